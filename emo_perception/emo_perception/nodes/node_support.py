"""What every emo_perception node shares: declared+validated parameters, QoS by name, lifecycle
with autostart, and /diagnostics. No perception math here."""
from __future__ import annotations

import sys
import time
from collections import deque

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy

from ..inference import BACKENDS, ModelFileError

RELIABILITY = {"best_effort": QoSReliabilityPolicy.BEST_EFFORT, "reliable": QoSReliabilityPolicy.RELIABLE}
OUTPUT_QOS = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)


class ConfigError(ValueError):
    """A parameter has a value the node cannot run with; the text names it and the allowed values."""


def input_qos(reliability: str, depth: int = 5) -> QoSProfile:
    """Sensor-data style (keep last, small depth), with the reliability chosen by name."""
    return QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=depth, reliability=RELIABILITY[reliability],
                      durability=QoSDurabilityPolicy.VOLATILE)


class RateMeter:
    """Messages per second over the last `window_s` of wall time."""

    def __init__(self, window_s: float = 5.0):
        self.window_s, self._t = window_s, deque()

    def tick(self):
        now = time.monotonic()
        self._t.append(now)
        while self._t and now - self._t[0] > self.window_s:
            self._t.popleft()

    def rate(self) -> float:
        now = time.monotonic()
        while self._t and now - self._t[0] > self.window_s:
            self._t.popleft()
        return len(self._t) / self.window_s


class EmoNode(LifecycleNode):
    """Lifecycle node: on_configure validates parameters and loads models (subclass `configure`),
    on_activate creates subscriptions (`activate`), on_deactivate/on_cleanup release them."""

    def __init__(self, name: str, **kwargs):
        super().__init__(name, **kwargs)
        self._choices = {}   # parameter -> allowed values, checked by p()
        self._decl("autostart", True, "configure and activate at start-up, for use without a lifecycle manager")
        self._decl("diagnostics_period", 1.0, "seconds between /diagnostics messages", (0.1, 60.0))
        self._decl("processing_time_warn", 0.05, "processing time per input (s) above which diagnostics WARN",
                   (0.0, 10.0))
        self._decl("processing_time_error", 0.2, "processing time per input (s) above which diagnostics ERROR",
                   (0.0, 10.0))
        self._subs, self._timers, self.counters = [], [], {}
        self._diag_pub = None
        self.processing_times = deque(maxlen=100)

    # -- parameters ---------------------------------------------------------------------
    def _decl(self, name, default, description, value_range=None, choices=None):
        desc = ParameterDescriptor(description=description + (f" (one of: {', '.join(choices)})" if choices else ""))
        if value_range is not None:
            lo, hi = value_range
            if isinstance(default, bool) or not isinstance(default, (int, float)):
                raise TypeError(name)
            if isinstance(default, int):
                desc.integer_range = [IntegerRange(from_value=lo, to_value=hi, step=1)]
            else:
                desc.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
        self.declare_parameter(name, default, desc)
        if choices is not None:
            self._choices[name] = tuple(choices)

    def p(self, name):
        """Parameter value, validated against its declared choices (ConfigError names the parameter)."""
        value = self.get_parameter(name).value
        choices = self._choices.get(name)
        if choices is not None and value not in choices:
            raise ConfigError(f"parameter '{name}' is '{value}'; allowed: {', '.join(map(str, choices))}")
        return value

    def declare_backend_parameters(self):
        self._decl("backend", "onnxruntime", "inference backend", choices=BACKENDS)
        self._decl("device", "cpu", "device for the backend (tensorrt always uses cuda)", choices=("cpu", "cuda"))
        self._decl("threads", 2, "CPU threads for inference", (1, 64))
        self._decl("tensorrt_precision", "fp16", "TensorRT engine precision", choices=("fp16", "fp32", "int8"))
        self._decl("engine_cache_dir", "", "TensorRT engine cache ('' = ~/.cache/emo_perception/engines)")
        self._decl("force_engine_update", False, "rebuild the TensorRT engine even if a cached one exists")

    def backend_options(self, max_batch: int = 1) -> tuple[str, dict]:
        backend = self.p("backend")
        if backend == "tensorrt":
            return backend, {"precision": self.p("tensorrt_precision"), "batch_range": (1, 1, max_batch),
                             "cache_dir": self.p("engine_cache_dir") or None,
                             "force_engine_update": self.p("force_engine_update")}
        return backend, {"device": self.p("device"), "threads": self.p("threads")}

    # -- lifecycle ----------------------------------------------------------------------
    def configure(self):
        raise NotImplementedError

    def activate(self):
        raise NotImplementedError

    def on_configure(self, state: State) -> TransitionCallbackReturn:
        try:
            self.configure()
        except (ConfigError, ModelFileError, FileNotFoundError, ValueError, ImportError) as err:
            self.get_logger().error(f"configure failed: {err}")
            return TransitionCallbackReturn.FAILURE
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(self.p("diagnostics_period"), self._publish_diagnostics)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self.activate()
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        for sub in self._subs:
            self.destroy_subscription(sub)
        for timer in self._timers:
            self.destroy_timer(timer)
        self._subs, self._timers = [], []
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self.release()
        return TransitionCallbackReturn.SUCCESS

    def release(self):
        """Free models and publishers (subclasses extend)."""

    def start(self) -> bool:
        """Autostart: configure and activate now; False if configuration failed."""
        if not self.p("autostart"):
            return True
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    # -- diagnostics --------------------------------------------------------------------
    def count(self, key, n=1):
        self.counters[key] = self.counters.get(key, 0) + n

    def diagnostic_values(self) -> tuple[int, str, dict]:
        """(level, message, extra key/values) from the subclass; default OK."""
        return DiagnosticStatus.OK, "ok", {}

    def _publish_diagnostics(self):
        level, message, values = self.diagnostic_values()
        if self.processing_times:
            worst = sorted(self.processing_times)[int(0.95 * (len(self.processing_times) - 1))]
            values["processing_time_p95_s"] = f"{worst:.4f}"
            if worst > self.p("processing_time_error"):
                level, message = DiagnosticStatus.ERROR, f"processing takes {worst * 1000:.0f} ms (p95)"
            elif worst > self.p("processing_time_warn") and level < DiagnosticStatus.WARN:
                level, message = DiagnosticStatus.WARN, f"processing takes {worst * 1000:.0f} ms (p95)"
        values.update({k: str(v) for k, v in self.counters.items()})
        status = DiagnosticStatus(level=level, name=f"emo_perception: {self.get_name()}", message=message,
                                  hardware_id=self.get_fully_qualified_name(),
                                  values=[KeyValue(key=k, value=str(v)) for k, v in sorted(values.items())])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(msg)


def stamp_seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def seconds_to_stamp(t: float, msg_stamp_cls):
    sec = int(t // 1)
    nsec = int(round((t - sec) * 1e9))
    if nsec >= 1_000_000_000:
        sec, nsec = sec + 1, nsec - 1_000_000_000
    return msg_stamp_cls(sec=sec, nanosec=nsec)


def run_single(node_cls, args=None):
    """main() of a node run as its own process (console script / ros2 run)."""
    rclpy.init(args=args if args is not None else sys.argv)
    node = node_cls()
    code = 0
    try:
        if not node.start():
            node.get_logger().fatal("could not start: configuration failed (see the error above)")
            code = 1
        else:
            rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    except rclpy.executors.ExternalShutdownException:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return code
