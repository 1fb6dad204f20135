"""emo_train on this machine: feature extraction throughput (the runtime's face and audio pipelines
over a generated session), one optimiser step of each stage's model (medians, interleaved), and
the whole recipe on the generated data set (face -> audio -> fusion) with its held-out CCC next to
the `prior` mode and a constant. Writes JSON.

    python bench_training.py [--sessions 12] [--seconds 16] [--out results/training.json]
"""
import argparse
import json
import pathlib
import tempfile
import time

import torch

from common import interleaved


def feature_rates(root: pathlib.Path, cache: pathlib.Path) -> dict:
    from emo_perception.training.config import TrainConfig
    from emo_perception.training.data import audio_config, face_config
    from emo_perception.training.features import audio_features, face_features
    from emo_perception.training.sessions import read_lab

    s = read_lab(root)
    session = s.sessions[0]
    cfg = TrainConfig(data=[{"root": str(root), "format": "lab"}])
    out = {}
    t = time.perf_counter()
    faces = face_features(session, face_config(cfg, ""), cache / "a", keep_crops=True)
    out["face_frames_per_s"] = round(len(faces["frame_times"]) / (time.perf_counter() - t), 1)
    for model in ("logmel_stats", "egemaps"):
        try:
            t = time.perf_counter()
            audio = audio_features(session, audio_config(cfg, model), cache / model)
            out[f"audio_windows_per_s_{model}"] = round(len(audio["time"]) / (time.perf_counter() - t), 1)
        except Exception as err:   # egemaps without the opensmile wheel
            out[f"audio_windows_per_s_{model}"] = f"n/a ({err})"
    return out


def step_times() -> dict:
    from emo_perception.nets.face_encoder import FaceEncoder
    from emo_perception.nets.fusion_gru import FusionGRU
    from emo_perception.training.audio_stage import AudioRegressor, AudioEncoderConfig

    torch.manual_seed(0)
    face, audio, fusion = FaceEncoder(), AudioRegressor(AudioEncoderConfig()), FusionGRU()
    opts = {k: torch.optim.AdamW(m.parameters(), 1e-3)
            for k, m in (("face", face), ("audio", audio), ("fusion", fusion))}
    x_face, x_audio = torch.rand(64, 1, 64, 64), torch.rand(64, 1, 96, 64)
    f, a, m = torch.rand(8, 200, 256), torch.rand(8, 200, 128), torch.ones(8, 200, 2)

    def step(name, loss):
        opts[name].zero_grad()
        loss.backward()
        opts[name].step()

    ms = interleaved({
        "face_student_batch64": lambda: step("face", sum(o.sum() for o in face(x_face))),
        "audio_encoder_batch64": lambda: step("audio", audio(x_audio).sum()),
        "fusion_gru_batch8x200steps": lambda: step("fusion", fusion(f, a, m, fusion.initial_state(8))[0].sum()),
    }, reps=10, warmup=2)
    return {"ms_per_step": ms,
            "samples_per_s": {"face_crops": round(64 / ms["face_student_batch64"] * 1000, 1),
                              "audio_windows": round(64 / ms["audio_encoder_batch64"] * 1000, 1),
                              "fusion_steps_25hz": round(8 * 200 / ms["fusion_gru_batch8x200steps"] * 1000, 1)}}


def recipe(root: pathlib.Path, runs: pathlib.Path) -> dict:
    from emo_perception.cli import train as emo_train

    data = ["--data", f"lab:{root}/lab", "--data", f"recola:{root}/recola"]
    common = ["--quiet", "--set", f"out_dir={runs}/{{stage}}", "--set", f"cache_dir={runs}/cache"]
    out = {}
    stages = [("face", ["--set", "epochs=3"]), ("audio", ["--set", "max_steps=150", "--set", "batch_size=32"]),
              ("fusion", ["--set", "epochs=30", "--set", "batch_size=8", "--set", "chunk_s=4", "--set", "chunk_hop_s=1",
                          "--set", f"face_model={runs}/face/export/face_encoder.json",
                          "--set", f"audio_model={runs}/audio/export/audio_encoder.json"])]
    for stage, extra in stages:
        t = time.perf_counter()
        assert emo_train.main([stage] + common + data + extra) == 0
        s = json.loads((runs / stage / "summary.json").read_text())
        out[stage] = {"seconds_with_features": round(time.perf_counter() - t, 1), "train_seconds": s["seconds"],
                      "steps": s["steps"], "val": s["val"]}
        for k in ("baselines", "val_without_face", "val_without_voice"):
            if k in s:
                out[stage][k] = s[k]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=16.0)
    ap.add_argument("--out", default="results/training.json")
    a = ap.parse_args()
    from emo_perception.training.synthetic import generate

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        t = time.perf_counter()
        generate(tmp / "data", sessions=a.sessions, seconds=a.seconds, recola_sessions=4)
        result = {"bench": "training", "torch_threads": torch.get_num_threads(),
                  "generated": {"lab_sessions": a.sessions, "recola_sessions": 4, "seconds_each": a.seconds,
                                "seconds_to_generate": round(time.perf_counter() - t, 1)},
                  "features": feature_rates(tmp / "data" / "lab", tmp / "bench_cache"),
                  "steps": step_times(),
                  "recipe": recipe(tmp / "data", tmp / "runs")}
    path = pathlib.Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, default=float))
    print(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
