"""Shared timing helpers: medians over interleaved repetitions (the machines are shared and noisy)."""
import os
import pathlib
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = ROOT / "emo_perception" / "models"


def time_ms(fn, reps=50, warmup=5):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def interleaved(fns: dict, reps=40, warmup=5) -> dict:
    """Median ms of each variant, measured alternately so load changes hit all of them alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            samples[k].append((time.perf_counter() - t) * 1000)
    return {k: round(statistics.median(v), 3) for k, v in samples.items()}


def export_random_models(out_dir) -> dict:
    """Face encoder, audio encoder and fusion GRU with random weights, exported to out_dir:
    for timing only, where the weights do not matter. Returns kind -> card path."""
    from emo_perception.nets import checkpoint
    from emo_perception.nets.audio_encoder import AudioEncoder
    from emo_perception.nets.face_encoder import FaceEncoder
    from emo_perception.nets.fusion_gru import FusionGRU
    from emo_perception.inference.export import export

    cards = {}
    for kind, model in [("face_encoder", FaceEncoder()), ("audio_encoder", AudioEncoder()),
                        ("fusion_gru", FusionGRU())]:
        checkpoint.save(f"{out_dir}/{kind}.pt", model.eval(), kind)
        cards[kind] = export(f"{out_dir}/{kind}.pt", out_dir).path
    return cards
