"""Live evaluation: the nodes running (started here as emo_perception_all on simulated time, or
already running on a robot), the bag played with /clock, every AffectArray recorded with the wall
time it arrived; latency = arrival - publication of the image that fed it."""
from __future__ import annotations

import bisect
import os
import subprocess
import sys
import tempfile
import threading
import time

from .. import conversions
from .bags import topic_types
from .evaluate import recorded_session
from .play import Player

SENSOR_TYPES = ("Image", "CompressedImage", "AudioDataStamped")   # what the nodes take in
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
SETTLE_S = 1.5    # after the last message: the fusion may still close steps (max_wait)
NODES = ("face_embedding_node", "audio_embedding_node", "fusion_node")   # the lifecycle nodes that must be active
STATE_POLL_S = 0.1      # between rounds of get_state requests
STATE_ANSWER_S = 1.0    # a get_state request unanswered this long is sent again (a node that ended can linger)


def start_nodes(params_file=None, compressed: bool = False) -> tuple[subprocess.Popen, str]:
    """emo_perception_all on simulated time; `compressed`: the face node takes image/compressed (a bag of
    CompressedImage, as emo_bag from-media writes by default), as the offline replay decodes them."""
    log = tempfile.NamedTemporaryFile("w", suffix=".log", prefix="emo_eval_nodes", delete=False)
    args = [sys.executable, "-m", "emo_perception.nodes.all_in_one"]
    if params_file:
        args += ["--params-file", str(params_file)]
    args += ["--ros-args", "-p", "use_sim_time:=true"]
    if compressed:
        args += ["-p", "face_embedding_node:use_compressed:=true"]
    with log:   # the child has its own descriptor of the file
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ)), log.name


def wait_until_active(node, names=NODES, timeout: float = 60.0, log_path=None, proc=None):
    """Ask each lifecycle node its state (`<name>/get_state`, lifecycle_msgs/srv/GetState) until every
    one is active. `node`'s executor must be spinning in another thread. Raises RuntimeError naming
    the nodes that are not active and the last state each reported (and the node log, if any); also
    if `proc` (the nodes started here) exits meanwhile."""
    from lifecycle_msgs.msg import State
    from lifecycle_msgs.srv import GetState

    clients = {n: node.create_client(GetState, f"{n}/get_state") for n in names}
    never = "no get_state service"
    last = dict.fromkeys(names, never)   # the state each node last reported
    inflight = {}    # name -> (future, time sent)
    where = f"node log: {log_path}" if log_path else "are the nodes running?"
    deadline = time.monotonic() + timeout
    try:
        while True:
            for name, client in clients.items():
                if last[name] == "active":
                    continue
                if name in inflight:
                    future, sent = inflight[name]
                    if future.done():
                        del inflight[name]
                        state = future.result().current_state
                        last[name] = "active" if state.id == State.PRIMARY_STATE_ACTIVE else \
                            (state.label or f"state id {state.id}")
                    elif time.monotonic() - sent > STATE_ANSWER_S:   # a reply lost in discovery: ask again
                        client.remove_pending_request(future)
                        del inflight[name]
                        if last[name] == never:
                            last[name] = "get_state unanswered"
                if name not in inflight and last[name] != "active" and client.service_is_ready():
                    inflight[name] = (client.call_async(GetState.Request()), time.monotonic())
            waiting = {n: s for n, s in last.items() if s != "active"}
            if not waiting:
                return
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the nodes exited (code {proc.returncode}); node log: {log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"not active within {timeout:.0f} s: "
                                   + ", ".join(f"{n} (last state: {s})" for n, s in waiting.items()) + f"; {where}")
            time.sleep(STATE_POLL_S)
    finally:
        for client in clients.values():
            node.destroy_client(client)


def evaluate_live(bag, params_file=None, start: bool = True, rate: float = 1.0, remap=None, timeout: float = 60.0):
    """(SessionResult of what arrived, latencies in s, node log path or None)."""
    import rclpy
    from emo_perception_msgs.msg import AffectArray
    from rclpy.executors import SingleThreadedExecutor

    compressed = COMPRESSED_IMAGE_TYPE in topic_types(bag).values()
    proc, log_path = start_nodes(params_file, compressed) if start else (None, None)
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
    spinner = threading.Thread(
        target=lambda: [executor.spin_once(timeout_sec=0.05) for _ in iter(lambda: running[0], False)], daemon=True)
    spinner.start()
    try:
        player = Player(node, bag, remap=remap, clock=True)
        sensors = [t for t, _, m in player.records if type(m).__name__ in SENSOR_TYPES]
        if not player.wait_for_subscribers(set(sensors), timeout):
            raise RuntimeError(f"no node subscribed to {sorted(set(sensors))} within {timeout:.0f} s"
                               + (f"; node log: {log_path}" if log_path else "; are the nodes running?")
                               + ("; the face node takes image/compressed only with use_compressed: true"
                                  if compressed and not start else ""))
        # nodes of the same names that ended a moment ago can linger in the graph: ask each node its
        # lifecycle state (only a live one answers) until all three are active
        wait_until_active(node, NODES, timeout, log_path, proc)
        deadline = time.monotonic() + timeout
        while node.count_publishers("affect") == 0 and time.monotonic() < deadline:
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
