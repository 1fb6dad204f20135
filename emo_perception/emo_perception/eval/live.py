"""Live evaluation: the nodes running (started here as emo_perception_all on simulated time, or
already running on a robot), the bag played with /clock, every AffectArray recorded with the wall
time it arrived; latency = arrival - publication of the image that fed it."""
from __future__ import annotations

import bisect
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

from .. import conversions
from .evaluate import recorded_session
from .play import Player

SENSOR_TYPES = ("Image", "CompressedImage", "AudioDataStamped")   # what the nodes take in
SETTLE_S = 1.5    # after the last message: the fusion may still close steps (max_wait)


def start_nodes(params_file=None) -> tuple[subprocess.Popen, str]:
    log = tempfile.NamedTemporaryFile("w", suffix=".log", prefix="emo_eval_nodes", delete=False)
    args = [sys.executable, "-m", "emo_perception.nodes.all_in_one"]
    if params_file:
        args += ["--params-file", str(params_file)]
    args += ["--ros-args", "-p", "use_sim_time:=true"]
    with log:   # the child has its own descriptor of the file
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ)), log.name


def _all_configured(log_path) -> bool:
    text = pathlib.Path(log_path).read_text(errors="replace")
    return all(marker in text for marker in ("face model", "audio encoder", "fusion mode"))


def evaluate_live(bag, params_file=None, start: bool = True, rate: float = 1.0, remap=None, timeout: float = 60.0):
    """(SessionResult of what arrived, latencies in s, node log path or None)."""
    import rclpy
    from emo_perception_msgs.msg import AffectArray
    from rclpy.executors import SingleThreadedExecutor

    proc, log_path = start_nodes(params_file) if start else (None, None)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("emo_eval", context=ctx)
    received, lock = [], threading.Lock()

    def on_affect(msg):
        with lock:
            received.append((msg, time.time()))
    node.create_subscription(AffectArray, "affect", on_affect, 1000)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    running = [True]
    spinner = threading.Thread(target=lambda: [executor.spin_once(timeout_sec=0.05) for _ in iter(lambda: running[0], False)],
                               daemon=True)
    spinner.start()
    try:
        player = Player(node, bag, remap=remap, clock=True)
        sensors = [t for t, _, m in player.records if type(m).__name__ in SENSOR_TYPES]
        if not player.wait_for_subscribers(set(sensors), timeout):
            raise RuntimeError(f"no node subscribed to {sorted(set(sensors))} within {timeout:.0f} s"
                               + (f"; node log: {log_path}" if log_path else "; are the nodes running?"))
        deadline = time.monotonic() + timeout
        # nodes of the same names that ended a moment ago can linger in the graph: when we started the
        # nodes, wait for their own word that all three are configured
        while (node.count_publishers("affect") == 0 or (log_path and not _all_configured(log_path))) \
                and time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the nodes exited (code {proc.returncode}); log: {log_path}")
            time.sleep(0.05)
        time.sleep(1.0)   # discovery of the affect subscription in the other direction
        player.play(rate=rate)
        time.sleep(SETTLE_S)
    finally:
        running[0] = False
        spinner.join(timeout=5)
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    images = {round(conversions.stamp_to_seconds(m.header.stamp) * 1e9): wall for _, m, wall in player.published
              if type(m).__name__ in ("Image", "CompressedImage")}   # header stamp -> publication (first loop)
    stamps = sorted(images)
    msgs = [m for m, _ in received]
    start_stamp = min((conversions.stamp_to_seconds(m.header.stamp) for _, _, m in player.records
                       if type(m).__name__ in SENSOR_TYPES), default=0.0)
    latencies = []
    for msg, wall in received:
        if not any(p.modalities & conversions.MODALITY_FACE for p in msg.people) or not stamps:
            continue
        t_ns = conversions.stamp_to_seconds(msg.header.stamp) * 1e9
        i = bisect.bisect_left(stamps, t_ns)
        near = min((stamps[j] for j in (i - 1, i) if 0 <= j < len(stamps)), key=lambda s: abs(s - t_ns))
        latencies.append(wall - images[near])
    return recorded_session(str(bag), msgs, start_stamp), latencies, log_path
