"""emo_eval: evaluate bags with the runtime pipelines (offline) or the running nodes (live), write a
report folder (metrics.json, predictions.csv, report.html) and print a summary.

    emo_eval session1 [session2 ...] [--annotations gold.csv] [--report out/eval] [--params-file my.yaml]
    emo_eval session1 --live            # start emo_perception_all on simulated time, play with /clock
    emo_eval session1 --live --no-start # nodes already running (a robot, ros2 launch use_sim_time:=true)

Annotations come from --annotations (CSV time,valence,arousal[,person] in seconds from the start of
the recording, or RECOLA ARFF) or from the bag's /annotations topic (emo_bag from-media --annotations).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys


def summary(metrics: dict, results, report) -> dict:
    out = {"report": str(report), "sessions": {}}
    for r in results:
        e = metrics["sessions"][r.bag]
        means = {}
        for fr in r.frames:
            for p in fr.step.people:
                means.setdefault(p.track_id or "voice only", []).append((p.valence, p.arousal))
        out["sessions"][r.bag] = {
            "inputs": e["inputs"], "affect_messages": e["affect_messages"], "complete": e["complete"],
            "people": {k: {"steps": len(v), "mean_valence": round(sum(x for x, _ in v) / len(v), 3),
                           "mean_arousal": round(sum(y for _, y in v) / len(v), 3)} for k, v in means.items()},
            **({"metrics": e["metrics"]} if "metrics" in e else {})}
    if "pooled" in metrics:
        out["pooled"] = metrics["pooled"]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="emo_eval", description=__doc__.splitlines()[0])
    ap.add_argument("bags", nargs="+")
    ap.add_argument("--annotations", nargs="+", help="one CSV, or one/two RECOLA ARFF files (single bag)")
    ap.add_argument("--params-file", help="the nodes' params file (default: the package's)")
    ap.add_argument("--report", default="emo_eval_report", help="report folder")
    ap.add_argument("--live", action="store_true", help="through the running nodes, bag played with /clock")
    ap.add_argument("--no-start", action="store_true", help="with --live: the nodes are already running")
    ap.add_argument("--rate", type=float, default=1.0, help="with --live: playback rate")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    from ..recordings.annotations import AnnotationError, read_annotations
    from ..eval.bags import BagError
    from ..eval.evaluate import evaluate, run_offline
    from ..eval.report import write_report
    from ..runtime import ConfigError, load_configs

    try:
        files = read_annotations(*a.annotations) if a.annotations else None
        if files is not None and len(a.bags) > 1:
            raise AnnotationError("--annotations applies to one bag; give several bags their /annotations topic")
        configs = load_configs(a.params_file)
        results, latencies, comparison = [], {}, {}
        for bag in a.bags:
            offline = run_offline(bag, configs, progress=not a.quiet)
            if a.live:
                from ..eval.live import evaluate_live
                live, lat, _ = evaluate_live(bag, a.params_file, start=not a.no_start, rate=a.rate)
                live.annotations, live.inputs, live.counts = offline.annotations, offline.inputs, offline.counts
                latencies[bag] = lat
                comparison[bag] = {"offline_steps": len(offline.frames), "live_steps": len(live.frames),
                                   "dropped_steps": len(offline.frames) - len(live.frames)}
                results.append(live)
            else:
                results.append(offline)

        def annotations_for(r):
            return files if files is not None else r.annotations
        metrics = evaluate(results, annotations_for)
        if comparison:
            metrics["live_vs_offline"] = comparison
            if any(latencies.values()):
                import numpy as np
                lat = np.concatenate([np.asarray(v) for v in latencies.values() if v]) * 1000
                metrics["latency_ms"] = {"p50": round(float(np.percentile(lat, 50)), 1),
                                         "p95": round(float(np.percentile(lat, 95)), 1), "n": int(lat.size)}
        report = write_report(a.report, results, metrics, annotations_for, latencies,
                              title=f"emo_eval: {', '.join(pathlib.Path(b).name for b in a.bags)}"
                                    + (" (live)" if a.live else " (offline)"))
    except (AnnotationError, BagError, ConfigError, FileNotFoundError, RuntimeError, ValueError) as err:
        print(f"emo_eval: {err}", file=sys.stderr)
        return 1
    out = summary(metrics, results, report)
    if "latency_ms" in metrics:
        out["latency_ms"] = metrics["latency_ms"]
    print(json.dumps(out, indent=2))
    return 0 if all(r.complete for r in results) else 2


if __name__ == "__main__":
    sys.exit(main())
