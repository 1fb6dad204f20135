"""session_logger_node (`emo_record`): the log of a study session. Writes `affect` (and, if asked,
the face/audio embeddings) with experiment events and pseudonymous metadata to a bag and to tidy CSV
(runtime/session_log.py); never raw images or audio.

Events: a std_msgs/String on `events` (logged at arrival on this node's clock) or the `mark_event`
service (emo_perception_msgs/MarkEvent; answers the stamp it logged). An event marked through the
service is published on `events` too, so whatever listens there (the live view, `emo_watch`, a
`ros2 bag record`) sees every event; the logger does not log its own echo again. An event
`participant:<id>=<track>` says which participant a track is (runtime/session_log.py). A restarted
logger with the same `session` continues its files: the fusion node keeps its last AffectArray
messages for late subscribers (transient local), so what was published while the logger was down is
written, once.
"""
from __future__ import annotations

import time
from collections import Counter

from emo_perception_msgs.msg import AffectArray, AudioEmbedding, FaceEmbeddingArray
from emo_perception_msgs.srv import MarkEvent
try:
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:   # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from rclpy.serialization import serialize_message
from std_msgs.msg import String

from .. import conversions
from ..core.health import ERROR, OK, WARN
from ..runtime.config import LoggerConfig
from ..runtime.params import ConfigError
from ..runtime.session_log import SessionLog, SessionLogError, clock_mismatch_s, parse_participant, session_name
from .node_support import NO_INPUT_S, EmoNode, RateMeter
from .runner import main_for

# Late-joining: receive what the fusion node kept (AFFECT_QOS in fusion_node: transient local, 250 deep).
BACKLOG_QOS = QoSProfile(depth=250, reliability=QoSReliabilityPolicy.RELIABLE,
                         durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
EVENT_QOS = LIVE_QOS = QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE)
AFFECT_FLOWING_S = 2.0   # affect received this recently (wall time): its stamps are the data's "now"


class SessionLoggerNode(EmoNode):
    CONFIG = LoggerConfig
    DESCRIPTION = "study session log: affect + events + metadata to a bag and tidy CSV (never raw media)"
    TOPICS = (("in", "affect", "emo_perception_msgs/AffectArray", "from fusion_node (its backlog after a restart)"),
              ("in", "events", "std_msgs/String", "experiment event markers (label), logged at arrival; "
               "'participant:P03=f1' assigns a participant to a track"),
              ("out", "events", "std_msgs/String", "the events marked through mark_event (every listener sees all)"),
              ("in", "faces/embeddings, audio/embeddings", "FaceEmbeddingArray, AudioEmbedding",
               "with record_embeddings: into the bag"),
              ("srv", "mark_event", "emo_perception_msgs/MarkEvent", "log an event now; answers its stamp"),
              ("out", "/diagnostics", "diagnostic_msgs/DiagnosticArray", "rows written, rows waiting, write errors"))

    def __init__(self, **kwargs):
        super().__init__("session_logger_node", **kwargs)
        self.log = None
        self._rate = RateMeter()
        self._write_error = None
        self._events_pub = None
        self._echo = Counter()            # labels this node published on `events`: not logged again
        self._newest_affect = None        # (stamp ns, monotonic time received)

    def configure(self, cfg: LoggerConfig):
        name = cfg.session or session_name(cfg.participant, cfg.condition)
        meta = {"session": name, "participant": cfg.participant, "condition": cfg.condition, "notes": cfg.notes}
        try:
            self.log = SessionLog(f"{cfg.output_dir.rstrip('/')}/{name}", meta)
            self.log.open_bag(cfg.storage)
        except SessionLogError as err:
            raise ConfigError(f"parameter 'output_dir' is '{cfg.output_dir}': {err}") from err
        self._events_pub = self.publisher(String, "events", EVENT_QOS)
        self.get_logger().info(f"session '{name}' (run {self.log.run}) in {self.log.folder}")

    def activate(self):
        # Two subscriptions: a transient-local one gets the fusion node's backlog after a restart, a
        # volatile one matches any other publisher (a bag player, ...); rows are de-duplicated by key.
        self.subscribe(AffectArray, "affect", self._on_affect, BACKLOG_QOS,
                       event_callbacks=SubscriptionEventCallbacks(incompatible_qos=lambda event: None))
        self.subscribe(AffectArray, "affect", self._on_affect, LIVE_QOS)
        self.subscribe(String, "events", self._on_event_topic, EVENT_QOS)
        if self.cfg.record_embeddings:
            self.subscribe(FaceEmbeddingArray, "faces/embeddings",
                           lambda m: self._to_bag("faces/embeddings", "emo_perception_msgs/msg/FaceEmbeddingArray", m),
                           EVENT_QOS)
            self.subscribe(AudioEmbedding, "audio/embeddings",
                           lambda m: self._to_bag("audio/embeddings", "emo_perception_msgs/msg/AudioEmbedding", m),
                           EVENT_QOS)
        self.serve(MarkEvent, "mark_event", self._on_mark_event)
        self.every(self.cfg.flush_period, self._flush)

    def on_deactivate(self, state):
        self._flush()
        return super().on_deactivate(state)

    def release(self):
        if self.log is not None:
            try:
                self.log.close()
            except SessionLogError as err:
                self.get_logger().error(f"rows lost at close: {err}")
        self.log, self._events_pub = None, None
        self._echo.clear()

    def _to_bag(self, topic, msgtype, msg, stamp_ns=None):
        if stamp_ns is None:
            stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        try:
            self.log.write_message(topic, msgtype, stamp_ns, serialize_message(msg))
        except SessionLogError as err:
            self._failed(err)

    def _on_affect(self, msg):
        self._rate.tick()
        frame = conversions.affect_from_msg(msg)
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self._newest_affect = (max(stamp_ns, (self._newest_affect or (stamp_ns, 0))[0]), time.monotonic())
        self.log.add_affect(stamp_ns, [(p.track_id, p.valence, p.arousal, p.confidence, p.face, p.voice)
                                       for p in frame.step.people])
        if stamp_ns not in self.log.bagged:   # both subscriptions deliver a transient-local publisher's messages
            self.log.bagged.add(stamp_ns)
            self._to_bag("affect", "emo_perception_msgs/msg/AffectArray", msg)

    def _event(self, label: str, source: str):
        """Log one event; (its stamp, what a participant assignment did or '')."""
        now = self.get_clock().now()
        note = self.log.add_event(now.nanoseconds, label, source)
        self._to_bag("events", "std_msgs/msg/String", String(data=label), now.nanoseconds)
        self.get_logger().info(f"event '{label}' ({source})" + (f": {note}" if note else ""))
        self._check_clocks(now.nanoseconds)
        return now, note

    def _check_clocks(self, event_ns: int):
        if self._newest_affect is None or time.monotonic() - self._newest_affect[1] > AFFECT_FLOWING_S:
            return
        gap = clock_mismatch_s(event_ns, self._newest_affect[0])
        if gap is not None:
            self.report("clock_mismatch", f"events are stamped on this node's clock, {gap:+.1f} s from the stamps "
                        "of the affect arriving now: events.csv and affect.csv will not line up. Replaying a "
                        "bag? Start emo_record with -p use_sim_time:=true and play the bag with /clock")

    def _on_event_topic(self, msg):
        if self._echo[msg.data] > 0:          # our own publication of a service-marked event: logged already
            self._echo[msg.data] -= 1
            return
        try:
            parse_participant(msg.data)
        except ValueError as err:
            self.report("bad_participant_events", f"{err}; logged as a plain event", throttle=False)
        self._event(msg.data, "topic")

    def _on_mark_event(self, request, response):
        if not request.label.strip():
            response.success, response.message = False, "label is empty; expected e.g. 'condition:B'"
            return response
        try:
            parse_participant(request.label)
        except ValueError as err:
            response.success, response.message = False, f"not logged: {err}"
            return response
        stamp, response.message = self._event(request.label, "service")
        response.stamp = stamp.to_msg()
        response.success = True
        self._echo[request.label] += 1
        self._events_pub.publish(String(data=request.label))
        return response

    def _flush(self):
        t0 = time.monotonic()
        try:
            self.log.flush()
        except SessionLogError as err:
            self._failed(err)
            return
        if self._write_error:
            self.get_logger().info("writing works again; nothing was lost")
        self._write_error = None
        self.processing_times.append(time.monotonic() - t0)

    def _failed(self, err):
        self._write_error = str(err)
        self.report("write_errors", str(err), ERROR)

    def pipeline_counts(self):
        if self.log is None:
            return {}
        return {"rows_written": self.log.rows_written, "rows_waiting": len(self.log.pending),
                "rows_dropped": self.log.rows_dropped, "events_logged": self.log.events_logged}

    def health(self):
        values = {"affect_rate_hz": f"{self._rate.rate():.1f}", "session": str(self.log.folder)}
        if self._write_error:
            return ERROR, self._write_error, values
        if self.log.rows_dropped:
            return ERROR, f"{self.log.rows_dropped} rows lost: the disk refused writes for too long", values
        if self._rate.rate() == 0.0:
            return WARN, f"no affect received in the last {NO_INPUT_S:.0f} s", values
        return OK, "ok", values


main = main_for(SessionLoggerNode)

if __name__ == "__main__":
    raise SystemExit(main())
