"""Feature extraction shared out over torchrun's ranks: each session's features computed once.

Under torchrun every rank reads the same data sets, so every rank can make the same plan: the jobs
a stage will read from the cache (one per session: its face and/or audio features; one per chunk of
AffectNet images), dealt out by a deterministic split (largest media first, each to the rank with the
least bytes so far; ties to the lower rank). Each rank extracts its share into `cache_dir`, all ranks
meet at a barrier, then every rank builds its stage as one process does, loading the complete cache.
One process skips the plan and behaves as before (the stage extracts as it reads).

The record (summary.json's `extraction`): per rank, what it was dealt, what it computed (cache files
not found), how long that took (`seconds`) and how long it then waited for the others at the barrier
(`waited_s`); `computed_after_barrier` lists what a rank had to compute after the
barrier, which is empty unless `cache_dir` is not one folder shared by every rank (several machines
without a shared file system: each then computes what the others made; a warning says so).
"""
from __future__ import annotations

import pathlib
import time
from dataclasses import dataclass
from typing import Callable

from ..paths import resolve_model
from . import features
from .data import Skips, read_all, session_audio, session_faces


@dataclass
class Job:
    name: str                       # the session's name, or an AffectNet chunk's cache name
    size: int                       # bytes of media it reads: what the split balances
    run: Callable[[Skips], None]    # extracts into the cache (a cache file already there is kept)


def _size(*paths) -> int:
    return sum(pathlib.Path(p).stat().st_size for p in paths if p is not None and pathlib.Path(p).is_file())


def _session_job(session, reads) -> Job:
    def run(skips):
        for read in reads:
            read(skips)
    return Job(session.name, _size(session.video, session.audio), run)


def stage_jobs(stage: str, cfg, ds) -> list[Job]:
    """What stage `stage` (face, audio, fusion) will read from the cache for the data set `ds`, one
    job per session or image chunk, by the same calls (and so the same cache keys) the stage makes."""
    jobs = []
    if stage == "face":
        from .face_stage import image_chunks

        teacher = resolve_model(cfg.teacher_model, "expression_teacher")
        for s in ds.sessions:
            if s.split != "test":
                jobs.append(_session_job(s, [lambda k, s=s: session_faces(cfg, s, str(teacher), k, keep_crops=True)]))
        jobs += [Job(c.name, _size(*(i.path for i in c.images)), lambda k, c=c: c.load(cfg.cache_dir))
                 for c in image_chunks(ds.images, teacher, cfg)]
        return jobs
    labelled = [s for s in ds.sessions if s.split != "test" and s.annotations is not None]
    if stage == "audio":
        return [_session_job(s, [lambda k, s=s: session_audio(cfg, s, "logmel_stats", k)]) for s in labelled]
    from .fusion_stage import feature_models, on_blendshapes

    face_model, audio_model = feature_models(cfg)
    teacher = str(resolve_model(cfg.teacher_model, "expression_teacher"))
    for s in labelled:
        reads = [lambda k, s=s: session_faces(cfg, s, face_model, k, need_face=False, landmarks=on_blendshapes(cfg)),
                 lambda k, s=s: session_audio(cfg, s, audio_model, k, need_sound=False)]
        if cfg.runtime_baselines and s.split == "val":     # runtime_scores: the prior mode on the node defaults
            reads += [lambda k, s=s: session_faces(cfg, s, teacher, k, need_face=False),
                      lambda k, s=s: session_audio(cfg, s, "logmel_stats", k, need_sound=False)]
        jobs.append(_session_job(s, reads))
    return jobs


def resolve_device(cfg, world) -> tuple[str, str]:
    """(device for the extraction's models, '' or the reason auto stayed on cpu). The detector always
    runs on ONNX Runtime, so CUDA needs its CUDA provider (onnxruntime-gpu) with either backend; each
    rank uses its own GPU (cuda:<local rank>). extract_device 'cuda' that cannot be had is an error."""
    if cfg.extract_device == "cpu":
        return "cpu", ""
    import onnxruntime
    import torch

    provider = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    gpu = f"cuda:{world.device.index if world.device.type == 'cuda' else world.local_rank}"
    if cfg.extract_device == "cuda":
        if not torch.cuda.is_available() or not provider:
            from ..runtime.params import ConfigError
            missing = "torch sees no CUDA device" if not torch.cuda.is_available() else \
                "this onnxruntime has no CUDA provider (install onnxruntime-gpu)"
            raise ConfigError(f"parameter 'extract_device' is 'cuda', but {missing}; allowed here: cpu, auto")
        return gpu, ""
    if world.device.type != "cuda":
        return "cpu", ""
    if not provider:
        return "cpu", ("feature extraction ran on the CPU although training runs on CUDA: this onnxruntime has no "
                       "CUDA provider (the detector runs on ONNX Runtime); install onnxruntime-gpu, or set "
                       "extract_device: cpu to silence this")
    return gpu, ""


def share(jobs: list[Job], size: int) -> list[list[Job]]:
    """Jobs dealt over `size` ranks: largest first, each to the rank with the fewest bytes so far
    (the lower rank on a tie). The same on every rank: it depends only on the jobs' names and sizes."""
    shares, load = [[] for _ in range(size)], [0] * size
    for job in sorted(jobs, key=lambda j: (-j.size, j.name)):
        r = min(range(size), key=lambda i: (load[i], i))
        shares[r].append(job)
        load[r] += job.size
    return shares


def extract_shared(stage: str, cfg, world) -> dict:
    """With several ranks: extract this rank's share, then wait at the barrier for the others.
    Returns this rank's record (see the module's docstring); one process returns an empty share."""
    started, first = time.monotonic(), len(features.COMPUTED)
    dealt, seconds = [], 0.0
    if world.size > 1:
        mine = share(stage_jobs(stage, cfg, read_all(cfg, Skips(verbose=False))), world.size)[world.rank]
        skips = Skips(verbose=False)        # the stage reports the skips once, on rank 0, when it loads
        for job in mine:
            job.run(skips)
        dealt, seconds = [j.name for j in mine], time.monotonic() - started
        world.barrier()
    return {"rank": world.rank, "dealt": dealt, "computed": features.COMPUTED[first:], "seconds": round(seconds, 2),
            "waited_s": round(time.monotonic() - started - seconds, 2), "mark": len(features.COMPUTED)}


def record(world, mine: dict, cache_dir) -> dict:
    """Every rank's record, gathered (call on every rank once the stage has loaded its features):
    what each computed before and after the barrier."""
    mine = dict(mine)
    mine["computed_after_barrier"] = features.COMPUTED[mine.pop("mark"):]
    if world.size == 1:     # one process: everything it computed, it computed while loading
        mine["computed"], mine["computed_after_barrier"] = mine["computed_after_barrier"], []
    ranks = world.gather(mine)
    out = {"world_size": world.size, "ranks": ranks}
    late = sorted({name for r in ranks for name in r["computed_after_barrier"]})
    if late:
        out["warning"] = (f"{len(late)} cache file(s) were computed after the barrier ({', '.join(late[:6])}"
                          f"{' ...' if len(late) > 6 else ''}): cache_dir '{cache_dir}' is not one folder "
                          "every rank sees (several machines need a shared file system for it), so ranks "
                          "repeated each other's extraction")
    return out

