"""emo_eval: evaluate bags with the runtime pipelines (offline) or the running nodes (live), write a
report folder (metrics.json, predictions.csv, compared.csv, report.html) and print a summary.

    emo_eval session1 [session2 ...] [--annotations gold.csv] [--report out/eval] [--params-file my.yaml]
    emo_eval session1 --live            # start emo_perception_all on simulated time, play with /clock
    emo_eval session1 --live --no-start # nodes already running (a robot, ros2 launch use_sim_time:=true)
    emo_eval study/* --jobs 4           # four bags at a time, in worker processes (offline)
    emo_eval study/* --shard 2/8 --report out   # share 2 of 8 (0..7) -> out/shard_2_of_8 (job arrays; env: torchrun)
    emo_eval merge out/shard_*_of_8 --report out/all   # one report; pooled scores equal a single run's

Annotations come from --annotations (CSV time,valence,arousal[,person] in seconds from the start of
the recording, or RECOLA ARFF) or from the bag's /annotations topic (emo_bag from-media --annotations).
An annotation is compared with the track of the same id, else the face track seen longest (several
people: the most-seen tracks, left to right), unless --person says which; warnings go to stderr and
metrics.json; exit 1 when nothing could be scored.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import shlex
import sys


def summary(metrics: dict, results, report) -> dict:
    out = {"report": str(report), "sessions": {}}
    from ..eval.evaluate import track_label, track_summary
    by_bag = {r.bag: r for r in results}
    for bag, e in metrics["sessions"].items():     # a merge of shards has no results, only their tracks
        people = e.get("tracks") or track_summary(by_bag[bag])
        out["sessions"][bag] = {
            "inputs": e["inputs"], "affect_messages": e["affect_messages"], "complete": e["complete"],
            "people": {track_label(k): {n: v[n] for n in ("steps", "spans_s", "mean_valence", "mean_arousal")}
                       for k, v in people.items()},
            **({"metrics": e["metrics"]} if "metrics" in e else {})}
    if "pooled" in metrics:
        out["pooled"] = metrics["pooled"]
    if metrics.get("warnings"):
        out["warnings"] = metrics["warnings"]
    return out


def seconds_over_zero(text: str) -> float:
    """argparse type of --ready-timeout."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def add_ready_timeout(ap: argparse.ArgumentParser, what: str):
    from ..eval.live import READY_TIMEOUT_S

    ap.add_argument("--ready-timeout", type=seconds_over_zero, default=READY_TIMEOUT_S, metavar="S",
                    help=f"{what}seconds the nodes get to subscribe and be active (default: %(default)s; a first "
                         "TensorRT engine build can take minutes); a node that logs an error or exits stops the "
                         "wait at once, with its error line")


def why_nothing(results) -> list[str]:
    """For each session without a single prediction: the problems that explain it, grouped by reason."""
    from ..eval.failures import problem_lines

    return [f"{r.bag}: no predictions; the pipelines reported: {line}"
            for r in results if not r.frames for line in problem_lines(r.problems)]


def merge_main(argv) -> int:
    """emo_eval merge: the report folders of the shares of one split -> one report folder."""
    ap = argparse.ArgumentParser(prog="emo_eval merge", description="Merge the report folders of emo_eval --shard "
                                 "I/N runs (every share of one split) into one report: metrics.json (pooled scores "
                                 "equal to a single run's over all the bags), predictions.csv, compared.csv and "
                                 "report.html.")
    ap.add_argument("shards", nargs="+", metavar="SHARD_REPORT",
                    help="the shares' report folders (shard_I_of_N), or a folder holding them")
    ap.add_argument("--report", default="emo_eval_report", help="merged report folder (default: %(default)s)")
    a = ap.parse_args(argv)
    from ..eval.shards import ShardError, merge_reports
    try:
        metrics, report = merge_reports(a.shards, a.report)
    except (ShardError, OSError) as err:
        print(f"emo_eval merge: {err}", file=sys.stderr)
        return 1
    print(json.dumps(summary(metrics, [], report), indent=2))
    for w in metrics["warnings"]:
        print(f"emo_eval: warning: {w}", file=sys.stderr)
    if any("per_person" in e for e in metrics["sessions"].values()) and not metrics["scored"]:
        print(f"emo_eval: nothing could be scored (the warnings above say why); report: {report}", file=sys.stderr)
        return 1
    return 0 if all(e["complete"] for e in metrics["sessions"].values()) else 2


def check_parallel(a, jobs: int, shard) -> None:
    """--live runs one bag at a time through the nodes on this machine's ROS domain: several at once
    would mix their messages, so --live with --jobs > 1 (or with several ranks here) is refused."""
    import os

    from ..eval.shards import ShardError

    if a.live and jobs > 1:
        raise ShardError(f"--jobs {jobs} with --live: a live run plays one bag at a time to the nodes on this "
                         "machine's ROS domain; allowed with --live: --jobs 1 (to spread a live study, run "
                         "--shard I/N on separate machines)")
    local = os.environ.get("LOCAL_WORLD_SIZE", "1")
    if a.live and shard is not None and a.shard.strip() == "env" and local != "1":
        raise ShardError(f"--shard env with --live: LOCAL_WORLD_SIZE {local}: the ranks on this machine would share "
                         "one ROS domain; allowed with --live: one rank per machine")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["merge"]:
        return merge_main(argv[1:])
    ap = argparse.ArgumentParser(prog="emo_eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bags", nargs="+", metavar="BAG", help="rosbag2 folder(s) to evaluate (sqlite3 or mcap)")
    ap.add_argument("--annotations", nargs="+", help="one CSV, or one/two RECOLA ARFF files (single bag)")
    ap.add_argument("--params-file", help="the nodes' params file (default: the package's)")
    ap.add_argument("--report", default="emo_eval_report", help="report folder (default: %(default)s)")
    ap.add_argument("--live", action="store_true", help="through the running nodes, bag played with /clock")
    ap.add_argument("--no-start", action="store_true", help="with --live: the nodes are already running")
    ap.add_argument("--rate", type=float, default=1.0,
                    help="with --live: playback rate (default: %(default)s = real time)")
    add_ready_timeout(ap, "with --live: ")
    ap.add_argument("--jobs", default="1", metavar="N",
                    help="offline: evaluate N bags at a time in worker processes, one line per finished bag "
                         "(default: %(default)s; results equal --jobs 1's; about one per 2 CPU cores)")
    ap.add_argument("--shard", metavar="I/N",
                    help="evaluate share I of N (0 <= I < N) of the bag list: the paths sorted, dealt round-robin; "
                         "the report goes to REPORT/shard_I_of_N, 'emo_eval merge' joins the shares; "
                         "'env': I/N from RANK/WORLD_SIZE (torchrun) or SLURM_PROCID/SLURM_NTASKS (srun)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--person", action="append", metavar="TRACK|NAME=TRACK",
                    help="the predicted track to compare an annotation with (default: by track id, else the face "
                         "seen longest; docs/evaluation.md); NAME=TRACK once per annotated person; one bag only")
    a = ap.parse_args(argv)
    from ..recordings.annotations import AnnotationError, read_annotations
    from ..eval.bags import BagError
    from ..eval.evaluate import evaluate, run_offline
    from ..eval.report import write_report
    from ..eval import shards
    from ..runtime import ConfigError, load_configs

    results = []    # the sessions so far: a failure says why those without predictions have none
    try:
        try:
            jobs = int(a.jobs)
        except ValueError:
            jobs = 0
        if jobs < 1:
            raise shards.ShardError(f"--jobs {a.jobs}: allowed: an integer >= 1 (worker processes)")
        shard = shards.parse_shard(a.shard) if a.shard is not None else None
        check_parallel(a, jobs, shard)
        twice = sorted({b for b in a.bags if a.bags.count(b) > 1})
        if twice:
            raise BagError(f"{', '.join(twice)}: given more than once; give each bag once")
        bags = shards.share(a.bags, shard)
        report_folder = pathlib.Path(a.report) / shard.folder if shard else pathlib.Path(a.report)
        if shard is not None and not a.quiet:
            print(f"emo_eval: share {shard}: {len(bags)} of {len(a.bags)} bag{'' if len(a.bags) == 1 else 's'} "
                  f"-> {report_folder}", file=sys.stderr)
        if a.person and len(a.bags) > 1:      # the whole list: a share of one bag must not accept it either
            raise AnnotationError("--person applies to one bag (track ids are per session)")
        files = read_annotations(*a.annotations) if a.annotations else None
        if files is not None and len(a.bags) > 1:
            raise AnnotationError("--annotations applies to one bag; give several bags their /annotations topic")
        configs = load_configs(a.params_file)
        latencies, comparison = {}, {}
        if not a.live:
            shards.evaluate_offline(bags, configs, a.params_file, jobs, progress=not a.quiet, results=results)
        for bag in bags if a.live else ():
            offline = run_offline(bag, configs, progress=not a.quiet)
            from ..eval.live import evaluate_live
            live, lat, _ = evaluate_live(bag, a.params_file, start=not a.no_start, rate=a.rate,
                                         ready_timeout=a.ready_timeout)
            live.annotations, live.inputs, live.counts = offline.annotations, offline.inputs, offline.counts
            live.problems = offline.problems
            latencies[bag] = lat
            comparison[bag] = {"offline_steps": len(offline.frames), "live_steps": len(live.frames),
                               "dropped_steps": len(offline.frames) - len(live.frames)}
            results.append(live)

        def annotations_for(r):
            return files if files is not None else r.annotations
        metrics = evaluate(results, annotations_for, a.person)
        command = shlex.join(["emo_eval", *argv])
        if shard is not None:
            metrics["shard"] = shards.shard_record(shard, a.bags, {
                "params file": a.params_file or "the package's (config/emo_perception.yaml)",
                "params sha256": shards.params_digest(a.params_file), "live": a.live,
                **({"rate": a.rate, "no_start": a.no_start} if a.live else {}),
                "annotations": a.annotations, "person": a.person}, command)
        if comparison:
            metrics["live_vs_offline"] = comparison
            if any(latencies.values()):
                from ..eval.latency import merged
                metrics["latency_ms"] = merged(latencies.values()).summary()
        report = write_report(report_folder, results, metrics, annotations_for, latencies,
                              title=f"emo_eval: {', '.join(pathlib.Path(b).name for b in bags) or 'no bags'}"
                                    + (" (live)" if a.live else " (offline)")
                                    + (f", share {shard} of {len(a.bags)} bags" if shard else ""),
                              run={"command": command,
                                   "evaluation": "live: the nodes on simulated time, the bag played with /clock"
                                   if a.live else "offline: the runtime pipelines over every message of the bag",
                                   "params file": a.params_file or "the package's (config/emo_perception.yaml)"})
    except (AnnotationError, BagError, ConfigError, FileNotFoundError, RuntimeError, ValueError) as err:
        print(f"emo_eval: {err}", file=sys.stderr)
        for line in why_nothing(results):
            print(f"emo_eval: {line}", file=sys.stderr)
        return 1
    out = summary(metrics, results, report)
    if "latency_ms" in metrics:
        from ..eval.latency import describe
        out["latency_ms"] = metrics["latency_ms"]
        print(f"emo_eval: {describe(metrics['latency_ms'])}", file=sys.stderr)
    print(json.dumps(out, indent=2))
    for w in metrics["warnings"]:
        print(f"emo_eval: warning: {w}", file=sys.stderr)
    why = why_nothing(results)
    for line in why:
        print(f"emo_eval: {line}", file=sys.stderr)
    if why:
        return 1
    if any("per_person" in e for e in metrics["sessions"].values()) and not metrics["scored"]:
        print(f"emo_eval: nothing could be scored (the warnings above say why); report: {report}", file=sys.stderr)
        return 1
    return 0 if all(r.complete for r in results) else 2


if __name__ == "__main__":
    sys.exit(main())
