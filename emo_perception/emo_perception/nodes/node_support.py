"""What every emo_perception node shares: parameters declared from the runtime config, QoS by name,
a lifecycle that creates everything in configure/activate and destroys it in deactivate/cleanup/
shutdown, problem reporting to the log and /diagnostics. No perception math here."""
from __future__ import annotations

import dataclasses
import re
import time
from collections import Counter, deque

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.clock import JumpThreshold
from rclpy.duration import Duration
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy

from ..core.health import ERROR, OK, WARN
from ..runtime.config import NodeConfig
from ..runtime.params import ConfigError, coerce, describe, from_values, unknown_name_error

RELIABILITY = {"best_effort": QoSReliabilityPolicy.BEST_EFFORT, "reliable": QoSReliabilityPolicy.RELIABLE}
OUTPUT_QOS = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
# Latched like audio_capture's AudioInfo: a late subscriber still gets the last one.
INFO_QOS = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE,
                      durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
# Parameters every rclpy node declares itself (use_sim_time; start_type_description_service from Iron
# on): a value given for them is not a typo. qos_overrides.* are ROS's too (checked by prefix).
ROS_PARAMETERS = ("use_sim_time", "start_type_description_service")
NO_INPUT_S = 5.0       # input silent this long: diagnostics WARN
LOG_THROTTLE_S = 5.0   # a recurring problem is logged at most this often per cause (every one is counted)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
# core.health levels -> DiagnosticStatus.level (a byte field: bytes in rclpy)
_LEVEL = {OK: DiagnosticStatus.OK, WARN: DiagnosticStatus.WARN, ERROR: DiagnosticStatus.ERROR}


def input_qos(reliability: str, depth: int = 5) -> QoSProfile:
    """Sensor-data style (keep last, small depth), with the reliability chosen by name."""
    return QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=depth, reliability=RELIABILITY[reliability],
                      durability=QoSDurabilityPolicy.VOLATILE)


class RateMeter:
    """Messages per second over the last `window_s` of wall time."""

    def __init__(self, window_s: float = NO_INPUT_S):
        self.window_s, self._t = window_s, deque()

    def tick(self):
        self._t.append(time.monotonic())
        self._trim()

    def rate(self) -> float:
        self._trim()
        return len(self._t) / self.window_s

    def _trim(self):
        now = time.monotonic()
        while self._t and now - self._t[0] > self.window_s:
            self._t.popleft()


def p95(values) -> float | None:
    return sorted(values)[int(0.95 * (len(values) - 1))] if values else None


class EmoNode(LifecycleNode):
    """Lifecycle node (lifecycle_py's talker pattern): `configure(cfg)` builds the pipeline and the
    (lifecycle) publishers, `activate()` the subscriptions and timers; deactivate destroys those,
    cleanup/shutdown/error everything. Subclasses set CONFIG, DESCRIPTION and TOPICS."""

    CONFIG = NodeConfig
    DESCRIPTION = ""
    TOPICS = ()      # (direction 'in'/'out', topic, type, what)

    def __init__(self, name: str, known_elsewhere=(), **kwargs):
        super().__init__(name, automatically_declare_parameters_from_overrides=True, **kwargs)
        # parameters of the other nodes of the same process: a global -p for them is no typo here
        self._known_elsewhere = set(known_elsewhere)
        self._override_errors = []
        self._declare_config()
        self.add_on_set_parameters_callback(self._validate_set)
        self.cfg = None
        self.finalized = False
        # Not _timers/_subscriptions/_publishers: rclpy's Node keeps its own lists under those names
        # (overwriting _timers made deactivate destroy the diagnostics timer too).
        self._lifecycle_pubs, self._plain_pubs, self._active_subs, self._active_timers = [], [], [], []
        self._active_services = []
        self._diag_timer = self._diag_pub = self._jump_handle = None
        self._reset_reporting()

    def _reset_reporting(self):
        self.counters = Counter()
        self.processing_times = deque(maxlen=100)
        self._recent = {}            # problem key -> (level, message) since the last diagnostics
        self._last_logged = {}       # (key, cause) -> monotonic time of its last log line

    # -- parameters -------------------------------------------------------------------------
    def _declare_config(self):
        """Declare every config field with its descriptor. The values given for them (-p, params files)
        were declared from the overrides as given (the constructor's
        automatically_declare_parameters_from_overrides); each is checked and coerced here (e.g.
        processing_rate: 10, an int, is a fine float) and declared again with the field's descriptor.
        A value that does not fit is kept as a one-line error for configure, and the default is used."""
        given = {name: self.get_parameter(name).value for name in self.list_parameters([], 0).names}
        self._given_names = set(given)
        for f in dataclasses.fields(self.CONFIG):
            desc = ParameterDescriptor(description=describe(f))
            rng = f.metadata.get("range")
            if rng is not None and isinstance(f.default, int) and not isinstance(f.default, bool):
                desc.integer_range = [IntegerRange(from_value=rng[0], to_value=rng[1], step=1)]
            elif rng is not None:
                desc.floating_point_range = [FloatingPointRange(from_value=float(rng[0]), to_value=float(rng[1]))]
            value = f.default
            if f.name in given:
                self.undeclare_parameter(f.name)
                try:
                    value = coerce(f.name, given[f.name], f)
                except ConfigError as err:
                    self._override_errors.append(str(err))
            self.declare_parameter(f.name, value, desc, ignore_override=True)

    def _validate_set(self, params):
        fields = {f.name: f for f in dataclasses.fields(self.CONFIG)}
        for p in params:
            if p.name in fields:
                try:
                    coerce(p.name, p.value, fields[p.name])
                except ConfigError as err:
                    return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    def read_config(self):
        """The node's config from its parameters; ConfigError (one line) for anything wrong."""
        if self._override_errors:
            raise ConfigError(self._override_errors[0])
        names = [f.name for f in dataclasses.fields(self.CONFIG)]
        for name in sorted(self._given_names - set(names) - self._known_elsewhere - set(ROS_PARAMETERS)):
            if not name.startswith("qos_overrides."):
                raise unknown_name_error(name, names, self.get_name())
        return from_values(self.CONFIG, {n: self.get_parameter(n).value for n in names}, self.get_name())

    # -- entities (all destroyed again by the lifecycle) ------------------------------------
    def publisher(self, msg_type, topic, qos):
        pub = self.create_lifecycle_publisher(msg_type, topic, qos)
        self._lifecycle_pubs.append(pub)
        return pub

    def plain_publisher(self, msg_type, topic, qos):
        pub = self.create_publisher(msg_type, topic, qos)
        self._plain_pubs.append(pub)
        return pub

    def subscribe(self, msg_type, topic, callback, qos, **kwargs):
        self._active_subs.append(self.create_subscription(msg_type, topic, callback, qos, **kwargs))

    def serve(self, srv_type, name, callback):
        self._active_services.append(self.create_service(srv_type, name, callback))

    def every(self, period_s, callback):
        self._active_timers.append(self.create_timer(period_s, callback))
        return self._active_timers[-1]

    def _destroy_active(self):
        for sub in self._active_subs:
            self.destroy_subscription(sub)
        for timer in self._active_timers:
            self.destroy_timer(timer)
        for service in self._active_services:
            self.destroy_service(service)
        self._active_subs, self._active_timers, self._active_services = [], [], []

    def _destroy_all(self):
        self._destroy_active()
        for pub in self._lifecycle_pubs:
            self.destroy_lifecycle_publisher(pub)
        for pub in self._plain_pubs:
            self.destroy_publisher(pub)
        self._lifecycle_pubs, self._plain_pubs = [], []
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
        if self._diag_pub is not None:
            self.destroy_publisher(self._diag_pub)
        if self._jump_handle is not None:
            self._jump_handle.unregister()
        self._diag_timer = self._diag_pub = self._jump_handle = None
        self.release()
        self.cfg = None

    # -- lifecycle ----------------------------------------------------------------------------
    def configure(self, cfg):
        raise NotImplementedError

    def activate(self):
        raise NotImplementedError

    def release(self):
        """Drop the pipeline and anything else configure made (subclasses extend)."""

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self.cfg = self.read_config()
            self.configure(self.cfg)
        except ConfigError as err:
            return self._fail("configure", err, with_type=False)
        except Exception as err:  # noqa: BLE001 - the boundary: rclpy would swallow it without a word
            return self._fail("configure", err)
        self._reset_reporting()
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(self.cfg.diagnostics_period, self._publish_diagnostics)
        threshold = Duration(seconds=self.cfg.time_jump_threshold)
        self._jump_handle = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=threshold, min_backward=Duration(nanoseconds=-threshold.nanoseconds),
                          on_clock_change=False), post_callback=self._on_clock_jump)
        return TransitionCallbackReturn.SUCCESS

    def _fail(self, transition, err, with_type=True) -> TransitionCallbackReturn:
        what = f"{type(err).__name__}: {err}" if with_type else str(err)
        self.get_logger().error(f"{transition} failed: {what}")
        self._destroy_all()
        return TransitionCallbackReturn.FAILURE

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        try:
            self.activate()
        except Exception as err:  # noqa: BLE001 - logged, the node stays inactive
            self._destroy_active()
            self.get_logger().error(f"activate failed: {type(err).__name__}: {err}")
            return TransitionCallbackReturn.FAILURE
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._destroy_active()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._destroy_all()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._destroy_all()
        self.finalized = True     # the runner exits once all of its nodes are
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: State) -> TransitionCallbackReturn:
        self._destroy_all()
        return TransitionCallbackReturn.SUCCESS

    def start(self) -> bool:
        """Autostart: configure and activate now; False if that failed (the reason is logged)."""
        if not self.get_parameter("autostart").value:
            return True
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def _on_clock_jump(self, jump):
        delta = jump.delta.nanoseconds * 1e-9
        if self.get_clock().now().nanoseconds == jump.delta.nanoseconds:
            # from time 0: simulated time (use_sim_time) got its first /clock message; a time base starts,
            # nothing jumped
            self.get_logger().info(f"ROS time starts at {delta:.3f} s (simulated time from /clock)")
            return
        self.report("clock_jumps", f"ROS time jumped {'back' if delta < 0 else 'forward'} {abs(delta):.3f} s "
                    "(a looping bag or restarted simulation); stamped data decides what resets", throttle=False)

    # -- problems and diagnostics ---------------------------------------------------------
    def report(self, key: str, message: str, level: int = WARN, count: bool = True, throttle: bool = True,
               cause: str = "", log: bool = True):
        """A problem with the input: counted under `key`, logged (throttled per cause unless it is a
        rare event; not at all with log=False) and shown in the next /diagnostics. `cause` tells
        faults under one key apart (the unsupported encoding); without one, the message with its
        numbers masked does (stamps and byte counts change, the kind of fault does not)."""
        if count:
            self.counters[key] += 1
        now = time.monotonic()
        # Own throttle per cause (different faults under one counter are each logged); rclpy's
        # throttles per call site, and this is one for all.
        kind = (key, cause or _NUMBER.sub("#", message))
        if log and (not throttle or now - self._last_logged.get(kind, -1e9) >= LOG_THROTTLE_S):
            self._last_logged[kind] = now
            # one call site per severity: rclpy refuses a call site that changes severity
            if level >= ERROR:
                self.get_logger().error(message)
            else:
                self.get_logger().warning(message)
        if level >= self._recent.get(key, (OK, ""))[0]:
            self._recent[key] = (level, message)

    def report_problems(self, handled):
        """Log and count what a runtime handler (runtime/handlers.py) found wrong with one input."""
        for p in handled.problems:   # quiet ones were said before: counted and on /diagnostics, not logged
            self.report(p.reason, p.text, p.level, count=p.count, throttle=p.throttle, cause=p.cause, log=not p.quiet)

    def health(self) -> tuple[int, str, dict]:
        """(level, message, values) of the node's own checks; default OK."""
        return OK, "ok", {}

    def pipeline_counts(self) -> dict:
        return {}

    def _publish_diagnostics(self):
        level, message, values = self.health()
        for key, (lvl, msg) in self._recent.items():
            if lvl > level:
                level, message = lvl, f"{key}: {msg}"
        self._recent = {}
        worst = p95(self.processing_times)
        if worst is not None:
            values["processing_time_p95_s"] = f"{worst:.4f}"
            if worst > self.cfg.processing_time_error:
                level, message = ERROR, f"processing takes {worst * 1000:.0f} ms (p95)"
            elif worst > self.cfg.processing_time_warn and level < WARN:
                level, message = WARN, f"processing takes {worst * 1000:.0f} ms (p95)"
        counts = Counter(self.counters)
        counts.update(self.pipeline_counts())
        values.update({k: str(v) for k, v in counts.items()})
        if hasattr(self.cfg, "backend"):
            values["backend"] = self.cfg.backend
        status = DiagnosticStatus(level=_LEVEL[level],
                                  name=f"emo_perception: {self.get_name()}", message=message,
                                  hardware_id=self.get_fully_qualified_name(),
                                  values=[KeyValue(key=k, value=str(v)) for k, v in sorted(values.items())])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)
