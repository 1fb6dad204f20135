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
