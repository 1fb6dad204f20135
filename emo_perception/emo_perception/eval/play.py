"""Publish a bag at its recorded timing, for machines without `ros2 bag play` (a robot can use that):
rate factor, start offset, loop, topic filter and remapping, and /clock for `use_sim_time`.
Messages go out as recorded (their CDR bytes become the rclpy message unchanged)."""
from __future__ import annotations

import importlib
import time

from .bags import read_raw

CLOCK_PERIOD_S = 0.01     # /clock is published at least this often between messages


def message_class(msgtype: str):
    """'sensor_msgs/msg/Image' -> sensor_msgs.msg.Image (the package must be installed)."""
    pkg, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.msg"), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"message type {msgtype} is not installed here: {err}") from err


def qos_for(msgtype: str):
    from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy

    if msgtype == "audio_common_msgs/msg/AudioInfo":    # latched, as audio_capture publishes it
        return QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE,
                          durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
    return QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE)


class Player:
    """Loads the bag once; `play()` publishes it (again) from `node`."""

    def __init__(self, node, bag, topics=None, remap=None, clock: bool = False):
        from rclpy.serialization import deserialize_message

        remap = remap or {}
        self.node, self.records, self.pubs = node, [], {}
        for topic, msgtype, t_ns, raw in read_raw(bag, topics):
            out = remap.get(topic, topic)
            if out not in self.pubs:
                self.pubs[out] = node.create_publisher(message_class(msgtype), out, qos_for(msgtype))
            self.records.append((out, t_ns, deserialize_message(raw, message_class(msgtype))))
        if not self.records:
            raise ValueError(f"bag '{bag}' has no messages on {sorted(topics) if topics else 'any topic'}")
        self.clock = None
        if clock:
            from rosgraph_msgs.msg import Clock
            self.clock = node.create_publisher(Clock, "/clock", 10)
        self.published = []   # (topic, message, wall time of publication)

    def wait_for_subscribers(self, topics, timeout: float = 30.0) -> list[str]:
        """Waits until each of `topics` (those played) has a subscriber; returns those that still have none."""
        deadline = time.monotonic() + timeout
        while True:
            missing = [t for t in topics if t in self.pubs and self.pubs[t].get_subscription_count() == 0]
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.05)

    def _tick_clock(self, t_ns):
        if self.clock is not None:
            from rosgraph_msgs.msg import Clock
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = divmod(int(t_ns), 1_000_000_000)
            self.clock.publish(msg)

    def play(self, rate: float = 1.0, start: float = 0.0, loops: int = 1, stop=None) -> dict:
        """Publish `loops` times (0: until `stop()`); returns wall and recorded durations."""
        first = self.records[0][1] + int(start * 1e9)
        records = [r for r in self.records if r[1] >= first]
        began, k = time.monotonic(), 0
        while loops == 0 or k < loops:
            loop_start = time.monotonic()
            for topic, t_ns, msg in records:
                due = loop_start + (t_ns - first) * 1e-9 / rate
                while True:
                    now = time.monotonic()
                    if now >= due:
                        break
                    self._tick_clock(first + (now - loop_start) * rate * 1e9)
                    time.sleep(min(CLOCK_PERIOD_S, due - now))
                    if stop and stop():
                        return self._summary(began, records, rate)
                self._tick_clock(t_ns)
                self.pubs[topic].publish(msg)
                self.published.append((topic, msg, time.time()))
            k += 1
        return self._summary(began, records, rate)

    def _summary(self, began, records, rate):
        return {"wall_s": round(time.monotonic() - began, 4),
                "recorded_s": round((records[-1][1] - records[0][1]) * 1e-9, 4),
                "rate": rate, "messages": len(self.published)}
