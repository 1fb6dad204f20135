"""emo_train's feature extraction (training/features.py) on generated sessions: frames/s of the face
path (decode, BlazeFace, tracker, crops, lip activity, face model) and windows/s of the audio path
with a network encoder, with the face model (and audio encoder) called once per frame (batch 1: what
extraction did before batching) and on `--batch` crops of consecutive frames per call, interleaved
in one run; the largest difference between the two variants' features; CUDA variants where this
machine has a GPU (onnxruntime-gpu), else said to be unmeasured. Writes JSON.

    python bench_extraction.py [--sessions 2] [--seconds 16] [--reps 3] [--batch 64] [--out results/extraction.json]
"""
import argparse
import json
import pathlib
import statistics
import tempfile
import time

from common import export_random_models


def _cuda() -> str:
    import onnxruntime
    import torch

    if not torch.cuda.is_available():
        return "unmeasured: torch sees no CUDA device on this machine"
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        return "unmeasured: this onnxruntime has no CUDA provider (install onnxruntime-gpu)"
    return ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=16.0)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--out", default="results/extraction.json")
    a = ap.parse_args()
    import numpy as np

    from emo_perception.training.config import TrainConfig
    from emo_perception.training.data import audio_config, face_config
    from emo_perception.training.features import audio_features, face_features
    from emo_perception.training.sessions import read_lab
    from emo_perception.training.synthetic import generate

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        generate(tmp / "data", sessions=a.sessions, seconds=a.seconds, recola_sessions=0, val_every=1000)
        sessions = read_lab(tmp / "data" / "lab").sessions
        audio_card = export_random_models(tmp)["audio_encoder"]
        no_cuda = _cuda()
        devices = ["cpu"] + ([] if no_cuda else ["cuda:0"])
        variants = {f"{dev}/batch{b}": (dev, b) for dev in devices for b in (1, a.batch)}
        rates = {k: {"face_frames_per_s": [], "audio_windows_per_s": []} for k in variants}
        features = {}
        run = 0
        for _ in range(a.reps):
            for name, (dev, batch) in variants.items():    # interleaved: load changes hit every variant alike
                cfg = TrainConfig(data=[{"root": str(tmp), "format": "lab"}], extract_device=dev, extract_batch=batch)
                frames = windows = 0
                face_s = audio_s = 0.0
                for s in sessions:
                    run += 1
                    cache = tmp / f"cache{run}"               # a fresh cache: every run computes
                    t = time.perf_counter()
                    faces = face_features(s, face_config(cfg, ""), cache, batch=batch)
                    face_s += time.perf_counter() - t
                    t = time.perf_counter()
                    audio = audio_features(s, audio_config(cfg, str(audio_card)), cache, batch=batch)
                    audio_s += time.perf_counter() - t
                    frames, windows = frames + len(faces["frame_times"]), windows + len(audio["time"])
                    features.setdefault(name, {})[s.name] = (faces, audio)
                rates[name]["face_frames_per_s"].append(frames / face_s)
                rates[name]["audio_windows_per_s"].append(windows / audio_s)
        base = "cpu/batch1"
        diffs = {}
        for name in variants:
            if name == base:
                continue
            d = {}
            for s in sessions:
                (f0, a0), (f1, a1) = features[base][s.name], features[name][s.name]
                assert np.array_equal(f0["box"], f1["box"]) and np.array_equal(f0["track"], f1["track"])
                for k in ("embedding", "logits", "va"):
                    d[f"face_{k}"] = max(d.get(f"face_{k}", 0.0), float(np.abs(f0[k] - f1[k]).max(initial=0)))
                d["audio_embedding"] = max(d.get("audio_embedding", 0.0),
                                           float(np.abs(a0["embedding"] - a1["embedding"]).max(initial=0)))
            diffs[f"{name} vs {base}"] = d
        med = {k: {m: round(statistics.median(v), 1) for m, v in r.items()} for k, r in rates.items()}
        result = {"bench": "extraction", "sessions": len(sessions), "seconds_each": a.seconds, "reps": a.reps,
                  "frames_per_session": int(np.mean([len(features[base][s.name][0]["frame_times"]) for s in sessions])),
                  "faces_per_session": int(np.mean([len(features[base][s.name][0]["time"]) for s in sessions])),
                  "median_rates": med, "all_rates": {k: {m: [round(x, 1) for x in v] for m, v in r.items()}
                                                     for k, r in rates.items()},
                  "speedup_batched_over_batch1": {
                      dev: {m: round(med[f"{dev}/batch{a.batch}"][m] / med[f"{dev}/batch1"][m], 2)
                            for m in med[f"{dev}/batch1"]} for dev in devices},
                  "max_abs_difference": diffs, "cuda": no_cuda or "measured"}
    path = pathlib.Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
