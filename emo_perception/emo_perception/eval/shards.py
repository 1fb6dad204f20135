"""A study in parts: `--jobs N` worker processes on one machine, `--shard I/N` for the I-th of N shares
of the bag list (a cluster's job array, torchrun, srun), and the merge of the shares' report folders into
one report whose pooled scores equal a single run's.

The split (one rule, stated in docs/evaluation.md): the bag paths as given, sorted as strings, dealt
round-robin; share I is sorted(bags)[I::N]. Every task of a job array sees the same list, so the shares
are disjoint and cover it. A shard's metrics.json records the split and the settings it ran with; the
merge refuses shares of different lists, settings or splits, and a missing or repeated share.

Pooling needs every compared step, not just each session's scores (CCC is not an average of CCCs):
each report folder holds compared.csv (eval/report.py), the exact inputs of every score, and the merge
concatenates them in the order a single run would (the bag list as given), so its pooled CCC, PCC and
RMSE are the single run's to the last bit."""
from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing
import os
import pathlib
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from ..core.alignment import PERIOD
from .evaluate import SessionResult, pooled_scores, run_offline

SPLIT = "round-robin over the bag paths sorted as strings: share I of N is sorted(bags)[I::N]"
# --shard env: the launchers whose variables name this process's share (torchrun first)
SHARD_ENV = (("RANK", "WORLD_SIZE", "torchrun"), ("SLURM_PROCID", "SLURM_NTASKS", "srun"))
SHARD_FOLDER = "shard_{index}_of_{count}"       # a shard's report folder inside --report
COMPARED_CSV = "compared.csv"                   # written by eval/report.py; read back here


class ShardError(ValueError):
    """A bad --shard / --jobs value or shares that cannot be merged; the text is one line."""


@dataclass(frozen=True)
class Shard:
    index: int      # 0 .. count-1
    count: int

    @property
    def folder(self) -> str:
        return SHARD_FOLDER.format(index=self.index, count=self.count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str, environ=None) -> Shard:
    """--shard I/N (0 <= I < N), or 'env': RANK/WORLD_SIZE (torchrun) or SLURM_PROCID/SLURM_NTASKS (srun)."""
    allowed = "allowed: I/N with N >= 1 and 0 <= I < N (shares counted from 0), or env"
    if text.strip() == "env":
        environ = os.environ if environ is None else environ
        for rank, size, who in SHARD_ENV:
            if rank in environ and size in environ:
                return parse_shard(f"{environ[rank]}/{environ[size]}")
        raise ShardError("--shard env: neither RANK/WORLD_SIZE (torchrun) nor SLURM_PROCID/SLURM_NTASKS (srun) "
                         f"is set; {allowed}")
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i = n = -1
    if not sep or n < 1 or not 0 <= i < n:
        raise ShardError(f"--shard {text}: {allowed}")
    return Shard(i, n)


def share(bags: list, shard: Shard | None) -> list:
    """The bags of this shard, in the order given (all of them without a shard)."""
    if shard is None:
        return list(bags)
    mine = set(sorted(map(str, bags))[shard.index::shard.count])
    return [b for b in bags if str(b) in mine]


def params_digest(params_file) -> str:
    """sha256 of the params file's bytes (the package's when None): shards must run the same settings."""
    from ..paths import default_params_file

    return hashlib.sha256(pathlib.Path(params_file or default_params_file()).read_bytes()).hexdigest()


def shard_record(shard: Shard, bags: list, settings: dict, command: str) -> dict:
    """What metrics.json says about the split (and the settings, which every share must have run
    with), for the merge to check."""
    return {"index": shard.index, "count": shard.count, "split": SPLIT, "bags": [str(b) for b in bags],
            "share": [str(b) for b in share(bags, shard)], "settings": settings, "command": command}


# ------------------------------------------------------------------------------ --jobs
_CONFIGS: dict = {}     # per worker process: params file -> configs (loaded once, used for each of its bags)


def _evaluate_in_worker(bag: str, params_file) -> tuple[SessionResult, float, int]:
    from ..runtime import load_configs

    if params_file not in _CONFIGS:
        _CONFIGS[params_file] = load_configs(params_file)
    t0 = time.perf_counter()
    result = run_offline(bag, _CONFIGS[params_file])
    return result, time.perf_counter() - t0, os.getpid()


def _done_line(k: int, n: int, result: SessionResult, seconds: float, pid: int) -> str:
    steps = len(result.frames)
    return (f"emo_eval: [{k}/{n}] {result.bag}: {sum(result.inputs.values())} messages -> {steps} step"
            f"{'' if steps == 1 else 's'} in {seconds:.1f} s (worker {pid})")


def evaluate_offline(bags: list, configs: dict, params_file, jobs: int = 1, progress: bool = True,
                     results: list | None = None) -> list:
    """run_offline over each bag, in `jobs` processes; results in the order of `bags`, equal to a
    one-process run's. Progress with several workers: one line per finished bag on stderr. The first
    error in bag order is raised; `results` (if given) then holds the sessions before that bag."""
    results = [] if results is None else results
    if jobs < 1:
        raise ShardError(f"--jobs {jobs}: allowed: an integer >= 1")
    if jobs == 1 or len(bags) <= 1:
        for bag in bags:
            results.append(run_offline(bag, configs, progress=progress))
        return results
    workers = min(jobs, len(bags))
    if progress:
        print(f"emo_eval: {len(bags)} bags on {workers} worker processes", file=sys.stderr, flush=True)
    # spawn: a fresh interpreter per worker (no forked ONNX Runtime/torch thread pools or open files)
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_evaluate_in_worker, str(bag), params_file) for bag in bags]
        pending, finished = set(futures), 0
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                if fut.exception() is None:
                    finished += 1
                    if progress:
                        print(_done_line(finished, len(bags), *fut.result()), file=sys.stderr, flush=True)
                elif pending:        # an error: start nothing more, the running ones finish
                    for other in pending:
                        other.cancel()
    failed = [(bag, fut.exception()) for bag, fut in zip(bags, futures)
              if not fut.cancelled() and fut.exception() is not None]
    for bag, fut in zip(bags, futures):
        if fut.cancelled() or fut.exception() is not None:     # cancelled: after another bag's error
            bag, err = failed[0]                                 # the first error in bag order
            if isinstance(err, BrokenProcessPool):
                raise RuntimeError(f"{bag}: the worker process evaluating it ended abruptly (out of memory? a "
                                   "crash in a native library?); evaluate it alone (--jobs 1) to see why") from err
            raise err
        results.append(fut.result()[0])
    return results


# ------------------------------------------------------------------------------ merge
def _read_json(folder: pathlib.Path) -> dict:
    path = folder / "metrics.json"
    if not path.is_file():
        raise ShardError(f"{folder}: no metrics.json (not an emo_eval report folder)")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ShardError(f"{path}: not readable JSON ({err})") from err


def shard_folders(paths) -> list:
    """Each argument is a shard's report folder, or a folder holding them (shard_I_of_N)."""
    out = []
    for p in map(pathlib.Path, paths):
        if not (p / "metrics.json").is_file():
            inner = sorted(q for q in p.glob("shard_*_of_*") if (q / "metrics.json").is_file())
            if inner:
                out += inner
                continue
        out.append(p)
    return out


def _rows(path: pathlib.Path) -> tuple[list, list]:
    if not path.is_file():
        raise ShardError(f"{path}: missing (a report folder of this version writes it; re-run that shard)")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ShardError(f"{path}: empty (no header)")
    return rows[0], rows[1:]


def _check_shards(shards: list) -> tuple[list, int]:
    """(folder, metrics) of every share of one split, sorted by share; ShardError naming what is wrong."""
    for folder, m in shards:
        if "shard" not in m:
            raise ShardError(f"{folder}: not a shard's report (made without --shard); merge takes the "
                             "report folders of emo_eval --shard I/N runs")
    (folder0, m0), first = shards[0], shards[0][1]["shard"]
    for folder, m in shards[1:]:
        s = m["shard"]
        for key, what in (("count", "number of shares differs"), ("bags", "bag list differs"),
                          ("settings", "settings differ")):
            if s[key] != first[key]:
                diff = ""
                if key == "settings":
                    diff = ": " + ", ".join(f"{k} {first[key].get(k)!r} vs {s[key].get(k)!r}"
                                            for k in sorted(set(first[key]) | set(s[key]))
                                            if first[key].get(k) != s[key].get(k))
                raise ShardError(f"{folder} and {folder0} are shares of different runs (the {what}{diff})")
        if m.get("grid_period_s") != m0.get("grid_period_s"):
            raise ShardError(f"{folder} and {folder0} use different grid periods")
    count = first["count"]
    by_index = {}
    for folder, m in shards:
        k = m["shard"]["index"]
        if k in by_index:
            raise ShardError(f"share {k}/{count} given twice: {by_index[k][0]} and {folder}")
        by_index[k] = (folder, m)
    missing = [k for k in range(count) if k not in by_index]
    if missing:
        raise ShardError(f"share{'s' if len(missing) > 1 else ''} {', '.join(f'{k}/{count}' for k in missing)} "
                         f"missing (have "
                         f"{', '.join(f'{k}/{count}' for k in sorted(by_index))}); every share of the split is needed")
    for k, (folder, m) in sorted(by_index.items()):
        if sorted(m["sessions"]) != sorted(m["shard"]["share"]):
            raise ShardError(f"{folder}: sessions {sorted(m['sessions'])} but share {k}/{count} is "
                             f"{sorted(m['shard']['share'])}")
    return [by_index[k] for k in range(count)], count


def merge_reports(paths, out) -> tuple[dict, pathlib.Path]:
    """The shares' report folders -> one report folder (metrics.json, predictions.csv, compared.csv,
    report.html); its metrics.json is a single run's over the whole bag list, plus `merged_from`."""
    from .report import write_merged_report

    folders = shard_folders(paths)
    if not folders:
        raise ShardError("merge: no shard report folders given")
    shards, count = _check_shards([(f, _read_json(f)) for f in folders])
    if shards[0][1].get("grid_period_s") != PERIOD:
        raise ShardError(f"{shards[0][0]}: made on a {shards[0][1].get('grid_period_s')} s grid; this version "
                         f"uses {PERIOD} s")
    order = shards[0][1]["shard"]["bags"]
    sessions, tables = {}, {"predictions.csv": {}, COMPARED_CSV: {}}
    headers = {}
    for folder, m in shards:
        sessions.update(m["sessions"])
        for name, by_session in tables.items():
            header, rows = _rows(folder / name)
            if headers.setdefault(name, header) != header:
                raise ShardError(f"{folder / name}: columns {header}, other shares have {headers[name]}")
            for row in rows:
                by_session.setdefault(row[0], []).append(row)
    present = [b for b in order if b in sessions]     # the bag list as a single run orders its sessions
    metrics = {"sessions": {b: sessions[b] for b in present}, "grid_period_s": shards[0][1]["grid_period_s"],
               "warnings": [f"{b}: {w}" for b in present for w in sessions[b]["warnings"]],
               "scored": any(sessions[b].get("scored") for b in present)}
    annotated = [b for b in present if "per_person" in sessions[b]]
    if annotated:
        col = {c: headers[COMPARED_CSV].index(c) for c in ("dimension", "prediction", "annotation")}
        pooled = {"valence": ([], []), "arousal": ([], [])}
        for b in annotated:
            for row in tables[COMPARED_CSV].get(b, []):
                try:
                    p, g = pooled[row[col["dimension"]]]
                    p.append(float(row[col["prediction"]]))
                    g.append(float(row[col["annotation"]]))
                except (KeyError, ValueError, IndexError) as err:
                    raise ShardError(f"{COMPARED_CSV} of {b}: bad row {row} ({err!r})") from err
        compared = [{"session": b, **c} for b in annotated for c in sessions[b]["metrics"]["compared"]]
        metrics["pooled"], why = pooled_scores(
            {d: (np.array(p, np.float64), np.array(g, np.float64)) for d, (p, g) in pooled.items()}, compared)
        if len(present) > 1:
            metrics["warnings"] += why
    live = {b: e for _, m in shards for b, e in m.get("live_vs_offline", {}).items()}
    if live:
        metrics["live_vs_offline"] = {b: live[b] for b in order if b in live}
        metrics["latency_ms_per_shard"] = {str(f): m["latency_ms"] for f, m in shards if "latency_ms" in m}
    metrics["merged_from"] = [{"folder": str(f), "shard": f"{m['shard']['index']}/{count}",
                               "sessions": m["shard"]["share"], "command": m["shard"]["command"]}
                              for f, m in shards]
    report = write_merged_report(out, metrics, headers, {n: [r for b in order for r in t.get(b, [])]
                                                         for n, t in tables.items()},
                                 settings=shards[0][1]["shard"]["settings"])
    return metrics, report
