"""emo_watch: the affect estimates as a live table, and the events as they are marked, without the
`ros2` CLI.

    emo_watch                                  # each person's newest estimate, once a second
    emo_watch --period 0                       # every 40 ms step
    emo_watch --format csv > watched.csv       # CSV on stdout (no event lines); notes go to stderr
    emo_watch --duration 60 --ros-args -r __ns:=/study

Columns: stamp (the data time the estimate is for, s), t (s since the first row shown), track (f0, f1,
...; `voice`: a voice heard with no face in view), valence and arousal (-1 .. +1), confidence (0 .. 1),
inputs (face, voice) and mode (prior or gru: what produced it). Exit 1 if no affect came at all.
On a robot `ros2 topic echo /affect` shows the raw messages.
"""
from __future__ import annotations

import argparse
import sys

COLUMNS = ("stamp", "t", "track", "valence", "arousal", "confidence", "inputs", "mode")
WIDTHS = (17, 8, 7, 8, 8, 10, 11, 5)


def _inputs(row) -> str:
    return "+".join(n for n, on in (("face", row.face), ("voice", row.voice)) if on) or "none"


def main(argv=None):
    from rclpy.utilities import remove_ros_args

    argv = list(sys.argv if argv is None else ["emo_watch", *argv])
    ap = argparse.ArgumentParser(prog="emo_watch", description=__doc__.split("\n\n")[0],
                                 epilog="ROS arguments go after --ros-args (namespace, remappings).")
    ap.add_argument("--period", type=float, default=1.0,
                    help="seconds between rows per person (default: %(default)s; 0: every step)")
    ap.add_argument("--duration", type=float, help="stop after this many seconds (default: Ctrl-C)")
    ap.add_argument("--format", choices=("table", "csv"), default="table",
                    help="a table for people, or CSV on stdout (default: %(default)s)")
    ap.add_argument("--topic", default="affect", help="the AffectArray topic (default: affect, in the namespace)")
    ap.add_argument("--events", default="events",
                    help="the events topic shown between the rows (table only; default: %(default)s)")
    a = ap.parse_args(remove_ros_args(args=argv)[1:])
    if a.period < 0 or (a.duration is not None and a.duration <= 0):
        print("emo_watch: --period must be >= 0 and --duration > 0", file=sys.stderr)
        return 1
    from ..nodes.study_tools import watch

    first = []
    csv_out = a.format == "csv"
    print(",".join(c if c != "inputs" else "face,voice" for c in COLUMNS) if csv_out
          else "  ".join(c.rjust(w) for c, w in zip(COLUMNS, WIDTHS)), flush=True)

    def on_rows(rows):
        for r in rows:
            if not first:
                first.append(r.stamp_ns)
            t = (r.stamp_ns - first[0]) * 1e-9
            stamp = f"{r.stamp_ns // 1_000_000_000}.{r.stamp_ns % 1_000_000_000:09d}"
            if csv_out:
                print(f"{stamp},{t:.3f},{r.track},{r.valence:.4f},{r.arousal:.4f},{r.confidence:.3f},"
                      f"{int(r.face)},{int(r.voice)},{r.mode}")
            else:
                cells = (stamp[:-6], f"{t:.2f}", r.track, f"{r.valence:+.3f}", f"{r.arousal:+.3f}",
                         f"{r.confidence:.2f}", _inputs(r), r.mode)
                print("  ".join(c.rjust(w) for c, w in zip(cells, WIDTHS)))
        sys.stdout.flush()

    def on_event(label):
        print(f"-- event: {label}", flush=True)

    def on_waiting(note):
        print(f"emo_watch: {note}", file=sys.stderr, flush=True)

    received = watch(on_rows, None if csv_out else on_event, a.period, a.duration, a.topic, a.events,
                     on_waiting, args=argv)
    if received == 0:
        print(f"emo_watch: no affect received on {a.topic}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
