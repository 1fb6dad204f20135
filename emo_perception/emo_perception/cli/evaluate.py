"""emo_eval: evaluate bags with the runtime pipelines (offline) or the running nodes (live), write a
report folder (metrics.json, predictions.csv, report.html) and print a summary.

    emo_eval session1 [session2 ...] [--annotations gold.csv] [--report out/eval] [--params-file my.yaml]
    emo_eval session1 --live            # start emo_perception_all on simulated time, play with /clock
    emo_eval session1 --live --no-start # nodes already running (a robot, ros2 launch use_sim_time:=true)

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
    for r in results:
        e = metrics["sessions"][r.bag]
        people = e.get("tracks") or track_summary(r)
        out["sessions"][r.bag] = {
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


def main(argv=None):
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
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--person", action="append", metavar="TRACK|NAME=TRACK",
                    help="the predicted track to compare an annotation with (default: by track id, else the face "
                         "seen longest; docs/evaluation.md); NAME=TRACK once per annotated person; one bag only")
    a = ap.parse_args(argv)
    from ..recordings.annotations import AnnotationError, read_annotations
    from ..eval.bags import BagError
    from ..eval.evaluate import evaluate, run_offline
    from ..eval.report import write_report
    from ..runtime import ConfigError, load_configs

    results = []    # the sessions so far: a failure says why those without predictions have none
    try:
        files = read_annotations(*a.annotations) if a.annotations else None
        if files is not None and len(a.bags) > 1:
            raise AnnotationError("--annotations applies to one bag; give several bags their /annotations topic")
        configs = load_configs(a.params_file)
        latencies, comparison = {}, {}
        for bag in a.bags:
            offline = run_offline(bag, configs, progress=not a.quiet)
            if a.live:
                from ..eval.live import evaluate_live
                live, lat, _ = evaluate_live(bag, a.params_file, start=not a.no_start, rate=a.rate,
                                             ready_timeout=a.ready_timeout)
                live.annotations, live.inputs, live.counts = offline.annotations, offline.inputs, offline.counts
                live.problems = offline.problems
                latencies[bag] = lat
                comparison[bag] = {"offline_steps": len(offline.frames), "live_steps": len(live.frames),
                                   "dropped_steps": len(offline.frames) - len(live.frames)}
                results.append(live)
            else:
                results.append(offline)

        def annotations_for(r):
            return files if files is not None else r.annotations
        metrics = evaluate(results, annotations_for, a.person)
        if comparison:
            metrics["live_vs_offline"] = comparison
            if any(latencies.values()):
                import numpy as np
                lat = np.concatenate([np.asarray(v) for v in latencies.values() if v]) * 1000
                metrics["latency_ms"] = {"p50": round(float(np.percentile(lat, 50)), 1),
                                         "p95": round(float(np.percentile(lat, 95)), 1), "n": int(lat.size)}
        report = write_report(a.report, results, metrics, annotations_for, latencies,
                              title=f"emo_eval: {', '.join(pathlib.Path(b).name for b in a.bags)}"
                                    + (" (live)" if a.live else " (offline)"),
                              run={"command": shlex.join(["emo_eval", *(argv if argv is not None else sys.argv[1:])]),
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
        out["latency_ms"] = metrics["latency_ms"]
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
