"""What a study operator does from a terminal, as small ROS clients (no `ros2` CLI needed): mark an
event through the session logger's `mark_event` service (`emo_mark_event`), and watch the `affect`
estimates and `events` as they come (`emo_watch`). Argument parsing and printing are cli/'s; these
functions start rclpy in a context of their own, do one thing and shut it down again.

ROS arguments (`--ros-args -r __ns:=/study`, `-p use_sim_time:=true`) apply as to any node.
"""
from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable

import rclpy
from emo_perception_msgs.msg import AffectArray
from emo_perception_msgs.srv import MarkEvent
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from std_msgs.msg import String

from .. import conversions
from ..core.speaker import track_name
from ..runtime.session_log import PARTICIPANT_PREFIX, parse_participant

WATCH_QOS = QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE)   # as the logger subscribes
WAITING_NOTE_S = 5.0      # no publisher of `affect` for this long: say so once


class StudyToolError(RuntimeError):
    """What went wrong, in one line that says what to check."""


def participant_label(participant: str, track: str) -> str:
    """The event that tells emo_record which participant a track is: `participant:P03=f1`."""
    label = f"{PARTICIPANT_PREFIX}{participant}={track}"
    try:
        parse_participant(label)
    except ValueError as err:
        raise StudyToolError(str(err)) from err
    return label


@dataclasses.dataclass
class AffectRow:
    """One person at one step, as the table shows it."""
    stamp_ns: int
    track: str          # the track's name: f0, f1, ... or 'voice' (the voice-only estimate)
    valence: float
    arousal: float
    confidence: float
    face: bool
    voice: bool
    mode: str           # what produced it: prior or gru (AffectArray.mode)


def _full_name(node, name: str) -> str:
    return name if name.startswith("/") else f"{node.get_namespace().rstrip('/')}/{name}"


class _Session:
    """rclpy in a context of its own and one node in it, shut down on exit."""

    def __init__(self, name: str, args=None):
        self.context = rclpy.Context()
        rclpy.init(args=args, context=self.context)
        self.node = rclpy.create_node(f"{name}_{os.getpid()}", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def mark_event(label: str, service: str = "mark_event", timeout: float = 10.0, args=None) -> tuple[int, str]:
    """Log `label` through emo_record's mark_event service: (the stamp it was logged under, in ns; the
    logger's note, '' for most events). StudyToolError if no logger answers or it refuses the label."""
    if not label.strip():
        raise StudyToolError("the event label is empty; give one, e.g. emo_mark_event condition:B")
    with _Session("emo_mark_event", args) as s:
        client = s.node.create_client(MarkEvent, service)
        where = _full_name(s.node, service)
        if not client.wait_for_service(timeout_sec=timeout):
            domain = os.environ.get("ROS_DOMAIN_ID", "0")
            raise StudyToolError(f"no service {where} after {timeout:g} s: is emo_record running, in this namespace "
                                 f"(--ros-args -r __ns:=...) and on ROS_DOMAIN_ID {domain}?")
        future = client.call_async(MarkEvent.Request(label=label))
        s.executor.spin_until_future_complete(future, timeout_sec=timeout)
        if not future.done():
            raise StudyToolError(f"{where} did not answer within {timeout:g} s; the event may not be logged")
        answer = future.result()
        if not answer.success:
            raise StudyToolError(f"{where}: {answer.message}")
        return answer.stamp.sec * 1_000_000_000 + answer.stamp.nanosec, answer.message


def _fully_matched(node, subs: dict):
    """((topic, publishers), ...) when each subscription is matched with every publisher of its topic
    that the graph knows of (and there is at least one), else None (also where rclpy cannot say: Humble's
    Subscription has no get_publisher_count, added in Iron)."""
    out = []
    for t, sub in subs.items():
        known = node.count_publishers(t)
        matched = getattr(sub, "get_publisher_count", None)
        if known == 0 or matched is None or matched() < known:
            return None
        out.append((t, known))
    return tuple(out)


def watch(on_rows: Callable[[list[AffectRow]], None], on_event: Callable[[str], None] | None = None,
          period: float = 1.0, duration: float | None = None, topic: str = "affect", events_topic: str = "events",
          on_waiting: Callable[[str], None] | None = None, args=None) -> int:
    """Receive `affect` (and `events`) until `duration` s have passed (None: until Ctrl-C). Every
    `period` s of wall time, `on_rows` gets each person's newest estimate since the last call (period 0:
    every message, each person's row of it); `on_event` gets each event label as it arrives. Returns the
    number of AffectArray messages received."""
    received, latest = 0, {}

    def on_affect(msg):
        nonlocal received
        received += 1
        frame = conversions.affect_from_msg(msg)
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        rows = [AffectRow(stamp_ns, track_name(p.track_id), p.valence, p.arousal, p.confidence, p.face, p.voice,
                          frame.mode) for p in frame.step.people]
        if period <= 0:
            on_rows(rows)
        else:
            latest.update({r.track: r for r in rows})

    with _Session("emo_watch", args) as s:
        subs = {topic: s.node.create_subscription(AffectArray, topic, on_affect, WATCH_QOS)}
        if on_event is not None:
            subs[events_topic] = s.node.create_subscription(String, events_topic, lambda m: on_event(m.data),
                                                            WATCH_QOS)
        start = next_print = time.monotonic()
        said_waiting, said_matched = False, None
        try:
            # context.ok(): after Ctrl-C rclpy shuts the context down and spin_once just returns
            while (duration is None or time.monotonic() - start < duration) and s.context.ok():
                s.executor.spin_once(timeout_sec=0.05)
                now = time.monotonic()
                matched = _fully_matched(s.node, subs) if on_waiting is not None else None
                if matched is not None and matched != said_matched:
                    # each time every publisher the graph knows of is connected: from then on nothing
                    # they publish is missed (a publisher discovered but not yet matched would be)
                    said_matched = matched
                    on_waiting("receiving " + ", ".join(f"{_full_name(s.node, t)} from {n} publisher(s)"
                                                        for t, n in matched))
                if period > 0 and now >= next_print:
                    next_print = now + period
                    if latest:
                        on_rows([latest[t] for t in sorted(latest)])
                        latest.clear()
                if (not said_waiting and on_waiting is not None and received == 0 and now - start > WAITING_NOTE_S
                        and s.node.count_publishers(topic) == 0):
                    said_waiting = True
                    on_waiting(f"no publisher of {_full_name(s.node, topic)} yet (ROS_DOMAIN_ID "
                               f"{os.environ.get('ROS_DOMAIN_ID', '0')}); waiting")
        except (KeyboardInterrupt, ExternalShutdownException):   # Ctrl-C, SIGTERM: the rows so far, then exit
            pass
        if latest:
            on_rows([latest[t] for t in sorted(latest)])
    return received
