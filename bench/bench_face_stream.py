"""The face stage's training items on AffectNet-sized data: --crops generated 64x64 crops (default
100k) written as the cache's chunk files (features.py: crops in their own .npy beside each .npz), then
the stage's items built (FaceStage._items) and --batches batches of 64 drawn at random (the
DistributedSampler's shuffled order), with augmentation, each variant in its own process:

- `streamed`: the crops stay in the memory-mapped cache files (training/crops.py), as now;
- `in_memory`: every chunk's crops read into memory and concatenated, as the stage did before.

Reported per variant: peak resident memory (ru_maxrss), the process's own (anonymous) memory
before the items were built and at the end, and the file-backed pages it mapped at the end
(/proc/self/status RssAnon / RssFile: page cache, shared, dropped under memory pressure; the kernel
maps cached pages around each one read, so it grows towards the file size), the seconds to build
the items, crops/s gathering batches, and crops/s of whole batches (gather + augmentation +
tensors). Writes JSON.

    python bench_face_stream.py [--crops 100000] [--batches 300] [--out results/face_stream.json]
"""
import argparse
import json
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

CHUNK = 2048          # crops per cache file: face_stage.IMAGE_CHUNK


def _status() -> dict:
    out = {}
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile", "VmRSS"):
            out[key + "_MB"] = round(int(value.split()[0]) / 1024, 1)
    return out


def write_cache(cache: pathlib.Path, n: int):
    """n crops in chunk files the way the stage's image chunks are cached: shifted real-looking
    faces (the astronaut's crop with noise), teacher log-probabilities, labels."""
    import numpy as np

    from emo_perception.recordings.sample_media import astronaut_head
    from emo_perception.training.features import _cached

    rng = np.random.default_rng(0)
    import cv2

    rgb, (x, y, w, h) = astronaut_head()
    base = cv2.resize(cv2.cvtColor(np.ascontiguousarray(rgb[y:y + h, x:x + w]), cv2.COLOR_RGB2GRAY), (80, 80))
    for k, start in enumerate(range(0, n, CHUNK)):
        m = min(CHUNK, n - start)
        dx, dy = rng.integers(0, 16, (2, m))
        crops = np.stack([base[y:y + 64, x:x + 64] for x, y in zip(dx, dy)]).astype(np.int16)
        crops = np.clip(crops + rng.integers(-20, 21, crops.shape), 0, 255).astype(np.uint8)
        logits = np.log(rng.dirichlet(np.ones(7), m)).astype(np.float32)
        data = {"crop": crops, "logits": logits, "va": rng.uniform(-1, 1, (m, 2)).astype(np.float32),
                "expression": rng.integers(-1, 7, m), "teacher_va": np.full((m, 2), np.nan, np.float32),
                "unreadable": np.zeros(0, dtype="U512")}
        _cached(cache, f"affectnet-train-{k:05d}", "images", {"bench": k}, lambda d=data: d)


def variant(cache: pathlib.Path, name: str, n: int, batches: int) -> dict:
    import numpy as np

    from emo_perception.training.face_stage import FaceStage
    from emo_perception.training.features import _cached

    before = _status()     # after the imports: what the items themselves add is the difference
    t = time.perf_counter()
    parts = []
    for k in range(0, (n + CHUNK - 1) // CHUNK):
        d = _cached(cache, f"affectnet-train-{k:05d}", "images", {"bench": k}, lambda: sys.exit("cache missing"))
        crop = d["crop"] if name == "streamed" else np.array(d["crop"])     # in_memory: read it all
        parts.append((crop, d["logits"], d["va"], d["expression"], d["teacher_va"]))
    items = FaceStage._items(parts, augment=True)
    if name == "in_memory":
        items.crop = np.concatenate([p[0] for p in parts])            # what _items did before
        parts = None
    build_s = time.perf_counter() - t
    assert len(items) == n
    rng = np.random.default_rng(1)
    order = [rng.choice(n, 64, replace=False) for _ in range(batches)]
    t = time.perf_counter()
    for idx in order:
        items.crop[idx]
    gather = batches * 64 / (time.perf_counter() - t)
    t = time.perf_counter()
    for i, idx in enumerate(order):
        items.batch(idx, [i * 64 + j for j in range(64)])
    whole = batches * 64 / (time.perf_counter() - t)
    return {"variant": name, "crops": n, "build_s": round(build_s, 2), "gather_crops_per_s": round(gather),
            "batch_crops_per_s": round(whole), "peak_rss_MB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                                                     / 1024, 1), **_status(),
            "RssAnon_before_items_MB": before["RssAnon_MB"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--crops", type=int, default=100_000)
    ap.add_argument("--batches", type=int, default=300)
    ap.add_argument("--out", default="results/face_stream.json")
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.variant:
        print(json.dumps(variant(pathlib.Path(a.cache), a.variant, a.crops, a.batches)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        cache = pathlib.Path(tmp) / "cache"
        t = time.perf_counter()
        write_cache(cache, a.crops)
        written = time.perf_counter() - t
        size = sum(p.stat().st_size for p in cache.iterdir())
        runs = []
        for name in ("streamed", "in_memory", "streamed", "in_memory"):     # alternated: the page cache is warm
            done = subprocess.run([sys.executable, __file__, "--variant", name, "--cache", str(cache),
                                   "--crops", str(a.crops), "--batches", str(a.batches)],
                                  capture_output=True, text=True, check=True)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    result = {"bench": "face_stream", "crops": a.crops, "cache_MB": round(size / 2**20, 1),
              "seconds_to_write_cache": round(written, 1), "batches_of_64": a.batches, "runs": runs}
    path = pathlib.Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
