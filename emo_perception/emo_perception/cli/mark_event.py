"""emo_mark_event: mark an event in the running study's session log (emo_record's `mark_event`
service), without the `ros2` CLI.

    emo_mark_event condition:B                       # prints the stamp it was logged under
    emo_mark_event robot_tells_joke --ros-args -r __ns:=/study
    emo_mark_event --participant P03 --track f1      # the event participant:P03=f1: P03 is track f1

Exit 0: logged; 1: no logger answered, or it refused the label (the line says why).
On a robot `ros2 service call /mark_event emo_perception_msgs/srv/MarkEvent "{label: 'condition:B'}"`
does the same.
"""
from __future__ import annotations

import argparse
import sys


def main(argv=None):
    from rclpy.utilities import remove_ros_args

    argv = list(sys.argv if argv is None else ["emo_mark_event", *argv])
    ap = argparse.ArgumentParser(prog="emo_mark_event", description=__doc__.split("\n\n")[0],
                                 epilog="ROS arguments go after --ros-args (namespace, remappings, use_sim_time).")
    ap.add_argument("label", nargs="?", help="what happened, e.g. condition:B (quote it if it has spaces)")
    ap.add_argument("--participant", help="with --track: say which participant a track is (pseudonymous id)")
    ap.add_argument("--track", help="with --participant: the track as the live view and emo_watch show it (f0, voice)")
    ap.add_argument("--service", default="mark_event", help="the logger's service (default: mark_event, namespaced)")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the logger (default 10)")
    a = ap.parse_args(remove_ros_args(args=argv)[1:])
    from ..nodes.study_tools import StudyToolError, mark_event, participant_label

    try:
        if (a.participant is None) != (a.track is None):
            raise StudyToolError("--participant and --track go together: emo_mark_event --participant P03 --track f1")
        if a.participant is not None:
            if a.label:
                raise StudyToolError(f"give either a label ('{a.label}') or --participant/--track, not both")
            label = participant_label(a.participant, a.track)
        elif a.label is None:
            raise StudyToolError("no event label given: emo_mark_event condition:B")
        else:
            label = a.label
        stamp_ns, note = mark_event(label, a.service, a.timeout, args=argv)
    except StudyToolError as err:
        print(f"emo_mark_event: {err}", file=sys.stderr)
        return 1
    print(f"logged '{label}' at {stamp_ns // 1_000_000_000}.{stamp_ns % 1_000_000_000:09d}"
          + (f" ({note})" if note else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
