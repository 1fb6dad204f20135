"""Run emo_perception nodes as separate processes and talk to them from the test over real DDS."""
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor

PKG = pathlib.Path(__file__).resolve().parents[1]
PARAMS = PKG / "config" / "emo_perception.yaml"


class NodeProcess:
    """One node in its own process; its log goes to a file the test can read."""

    def __init__(self, module: str, *ros_args: str, params_file=PARAMS, before_ros_args=(), env=None):
        self.log_path = pathlib.Path(tempfile.mkstemp(suffix=".log", prefix=module.split(".")[-1])[1])
        self._log = open(self.log_path, "w")
        files = ["--params-file", str(params_file)] if params_file else []
        args = [sys.executable, "-m", f"emo_perception.nodes.{module}", *before_ros_args, "--ros-args", *files,
                *ros_args]
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env or dict(os.environ))

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


class Harness:
    """A test-side rclpy node spun in a background thread."""

    def __init__(self, name="test_harness"):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._running = True
        self._thread.start()

    def _spin(self):
        while self._running and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def collect(self, msg_type, topic, qos=10):
        received = []
        self.node.create_subscription(msg_type, topic, lambda m: received.append(m), qos)
        return received

    def wait_for(self, predicate, timeout: float, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def close(self):
        self._running = False
        self._thread.join(timeout=5)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


# What a node says when the machine, not the input, is slow: its own processing time, or camera frames
# that replaced each other in its queue while it worked. The suite runs two files at once on shared
# 2-core machines, where a p95 over a threshold is the node telling the truth; any other WARN, and any
# ERROR, is a finding.
_BUSY = re.compile(r"^processing takes \d+ ms \(p95\)$|\(they would have been skipped\)")


def ok_or_busy(level, message) -> bool:
    """True for OK, and for a WARN whose only cause is this machine's load (see _BUSY)."""
    return level == DiagnosticStatus.OK or (level == DiagnosticStatus.WARN and bool(_BUSY.search(message)))


def latest_status(diagnostics, node_name):
    """Newest /diagnostics status of a node as (level, message, {key: value})."""
    for m in reversed(diagnostics):
        for s in m.status:
            if s.name.endswith(node_name):
                return s.level, s.message, {kv.key: kv.value for kv in s.values}
    return None, "", {}
