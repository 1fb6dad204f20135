"""emo_train's feature extraction (training/features.py) on generated sessions: frames/s of the face
path (decode, BlazeFace, tracker, crops, lip activity, face model) and windows/s of the audio path
with a network encoder, with the face model (and audio encoder) called once per frame (batch 1: what
extraction did before batching) and on `--batch` crops of consecutive frames per call, interleaved
in one run; the largest difference between the two variants' features; CUDA variants where this
machine has a GPU (onnxruntime-gpu), else said to be unmeasured. Also BlazeFace alone on 1280x720
frames, one network call per frame (detect) against `--detector-batch` frames per call (detect_many),
interleaved; `--detector-only` measures just that. Writes JSON.

    python bench_extraction.py [--sessions 2] [--seconds 16] [--reps 3] [--batch 64] [--out results/extraction.json]
    python bench_extraction.py --detector-only --out results/extraction_detector_batch.json
"""
import argparse
import json
import pathlib
import statistics
import tempfile
import time

from common import MODELS, export_random_models, interleaved

DETECTOR_FRAMES = 32      # 1280x720 frames per timed pass: four batches of eight
DETECTOR_REPS = 10        # interleaved passes per variant


def detector_batch_rates(batch: int) -> dict:
    """Frames/s of BlazeFace (ONNX Runtime, 2 threads, the default 576x320 canvas) on real 1280x720 scenes
    with one or two real faces: detect() frame by frame against detect_many(batch), and whether they agree."""
    from emo_perception.core.face_detection import BlazeFaceDetector
    from emo_perception.inference import load_model
    from emo_perception.recordings.sample_media import astronaut_head, background, place_face

    scenes = ("coffee", "rocket", "chelsea", "immunohistochemistry")
    frames = []
    for k in range(DETECTOR_FRAMES):
        frame = background(1280, 720, scenes[k % len(scenes)])
        place_face(frame, astronaut_head(), (200 + 15 * k, 360), 64 + 8 * (k % 8), 0)
        if k % 2:
            place_face(frame, astronaut_head(), (1000, 300 + 5 * k), 110, 10)
        frames.append(frame)
    detector = BlazeFaceDetector(load_model(MODELS / "blazeface_full_range.json", "onnxruntime", threads=2))
    per_frame = [detector.detect(f) for f in frames]
    variants = {"per_frame": lambda: [detector.detect(f) for f in frames],
                f"detect_many_batch{batch}": lambda: detector.detect_many(frames, batch=batch)}
    ms = interleaved(variants, reps=DETECTOR_REPS, warmup=1)
    rates = {k: round(len(frames) / (v / 1000), 1) for k, v in ms.items()}
    return {"frame_size": [1280, 720], "canvas": list(detector.canvas), "threads": 2, "frames": len(frames),
            "faces_found": sum(map(len, per_frame)), "reps": DETECTOR_REPS, "median_frames_per_s": rates,
            "speedup_batched_over_per_frame": round(rates[f"detect_many_batch{batch}"] / rates["per_frame"], 2),
            "same_faces": detector.detect_many(frames, batch=batch) == per_frame}


def write_result(result: dict, out: str):
    path = pathlib.Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


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
    ap.add_argument("--detector-batch", type=int, default=8, help="frames per detect_many call (default: %(default)s)")
    ap.add_argument("--detector-only", action="store_true", help="measure only detect against detect_many")
    a = ap.parse_args()
    if a.detector_only:
        write_result({"bench": "extraction_detector_batch", "detector_batch": detector_batch_rates(a.detector_batch)},
                     a.out)
        return
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
                  "max_abs_difference": diffs, "cuda": no_cuda or "measured",
                  "detector_batch": detector_batch_rates(a.detector_batch)}
    write_result(result, a.out)


if __name__ == "__main__":
    main()
