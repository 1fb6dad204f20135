"""Live evaluation: the nodes running (started here as emo_perception_all on simulated time, or
already running on a robot), the bag played with /clock, every AffectArray recorded with the wall
time it arrived; latency = arrival - publication of the image that fed it, the first estimate and the
first second apart from the steady state (eval/latency.py)."""
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
from .failures import error_line
from .latency import LiveLatency
from .play import Player

SENSOR_TYPES = ("Image", "CompressedImage", "AudioDataStamped")   # what the nodes take in
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
SETTLE_S = 1.5    # after the last message: the fusion may still close steps (max_wait)
NODES = ("face_embedding_node", "audio_embedding_node", "fusion_node")   # the lifecycle nodes that must be active
STATE_POLL_S = 0.1      # between rounds of get_state requests
STATE_ANSWER_S = 1.0    # a get_state request unanswered this long is sent again (a node that ended can linger)
READY_TIMEOUT_S = 60.0  # for the nodes to subscribe and be active (a first TensorRT engine build can take minutes)
STOP_GRACE_S = 10.0     # after SIGTERM before SIGKILL: nodes flush and free their models
FAILED_GRACE_S = 1.0    # the same once a node failed: the others may still be loading models, for nothing


class NodesFailed(RuntimeError):
    """The nodes started here failed: the first error line they logged (or how they exited) and the log."""


class NodeProcess:
    """Nodes started here, watched while a tool waits for them: their exit status and the first error
    line of their log (stdout and stderr together), read as it grows."""

    def __init__(self, proc: subprocess.Popen, log_path: str):
        self.proc, self.log_path = proc, log_path
        self._read, self._partial, self._error, self._last = 0, "", None, ""
        self.failed = False     # check() raised: stop() does not wait long

    def _scan(self, final: bool = False):
        with open(self.log_path, "rb") as f:
            f.seek(self._read)
            chunk = f.read()
        self._read += len(chunk)
        lines = (self._partial + chunk.decode(errors="replace")).split("\n")
        self._partial = "" if final else lines.pop()     # a line still being written waits for its end
        for line in lines:
            if line.strip():
                self._last = line.strip()
            if self._error is None:
                self._error = error_line(line)

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def failure(self, errors_fatal: bool = True) -> str | None:
        """Why the nodes failed, in one line, or None while they run (an error line counts while they
        start, `errors_fatal`: a node that failed to configure or activate does not become active)."""
        exited = self.exited()
        self._scan(final=exited)
        if exited:
            said = self._error or (f"last output: {self._last}" if self._last else "no output")
            return f"the nodes exited (code {self.proc.returncode}): {said} (node log: {self.log_path})"
        if errors_fatal and self._error:
            return f"{self._error} (node log: {self.log_path})"
        return None

    def check(self, errors_fatal: bool = True):
        """Raises NodesFailed when failure() has something to say."""
        why = self.failure(errors_fatal)
        if why:
            self.failed = True
            raise NodesFailed(why)

    def stop(self):
        if self.exited():
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=FAILED_GRACE_S if self.failed else STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_nodes(params_file=None, compressed: bool = False) -> NodeProcess:
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
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    return NodeProcess(proc, log.name)


def wait_until_active(node, names=NODES, timeout: float = READY_TIMEOUT_S, log_path=None,
                      watch: NodeProcess | None = None):
    """Ask each lifecycle node its state (`<name>/get_state`, lifecycle_msgs/srv/GetState) until every
    one is active. `node`'s executor must be spinning in another thread. Raises RuntimeError naming
    the nodes that are not active and the last state each reported (and the node log, if any), and
    NodesFailed as soon as `watch` (the nodes started here) exits or logs an error."""
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
            if watch is not None:
                watch.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"not active within {timeout:.0f} s: "
                                   + ", ".join(f"{n} (last state: {s})" for n, s in waiting.items()) + f"; {where}")
            time.sleep(STATE_POLL_S)
    finally:
        for client in clients.values():
            node.destroy_client(client)


def evaluate_live(bag, params_file=None, start: bool = True, rate: float = 1.0, remap=None,
                  ready_timeout: float = READY_TIMEOUT_S):
    """(SessionResult of what arrived, LiveLatency, node log path or None). The nodes get
    `ready_timeout` s to subscribe and be active; those started here are watched meanwhile, and a
    failure (an error line in their log, their exit) raises NodesFailed with that line at once."""
    import rclpy
    from emo_perception_msgs.msg import AffectArray
    from rclpy.executors import SingleThreadedExecutor

    compressed = COMPRESSED_IMAGE_TYPE in topic_types(bag).values()
    watch = start_nodes(params_file, compressed) if start else None   # first: they load models meanwhile
    log_path = watch.log_path if watch else None
    ctx = node = spinner = None
    running = [True]
    received, lock = [], threading.Lock()

    def on_affect(msg):
        with lock:
            received.append((msg, time.time()))

    def check():
        if watch is not None:
            watch.check()
    try:
        ctx = rclpy.Context()
        rclpy.init(context=ctx)
        node = rclpy.create_node("emo_eval", context=ctx)
        node.create_subscription(AffectArray, "affect", on_affect, 1000)
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(node)
        spinner = threading.Thread(
            target=lambda: [executor.spin_once(timeout_sec=0.05) for _ in iter(lambda: running[0], False)],
            daemon=True)
        spinner.start()
        deadline = time.monotonic() + ready_timeout
        player = Player(node, bag, remap=remap, clock=True)
        sensors = {t for t, _, m in player.records if type(m).__name__ in SENSOR_TYPES}
        while player.wait_for_subscribers(sensors, STATE_POLL_S):     # topics still without a subscriber
            check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"no node subscribed to {sorted(sensors)} within {ready_timeout:.0f} s "
                                   "(--ready-timeout)"
                                   + (f"; node log: {log_path}" if log_path else "; are the nodes running?")
                                   + ("; the face node takes image/compressed only with use_compressed: true"
                                      if compressed and not start else ""))
        # nodes of the same names that ended a moment ago can linger in the graph: ask each node its
        # lifecycle state (only a live one answers) until all three are active
        wait_until_active(node, NODES, max(deadline - time.monotonic(), STATE_ANSWER_S), log_path, watch)
        while node.count_publishers("affect") == 0 and time.monotonic() < deadline:
            check()
            time.sleep(0.05)
        time.sleep(1.0)   # discovery of the affect subscription in the other direction
        player.play(rate=rate, stop=watch.exited if watch else None)
        time.sleep(SETTLE_S)
        if watch is not None:
            watch.check(errors_fatal=False)   # active nodes log bad messages as errors; only an exit is fatal
    finally:
        running[0] = False
        if spinner is not None:
            spinner.join(timeout=5)
        if node is not None:
            node.destroy_node()
        if ctx is not None:
            rclpy.try_shutdown(context=ctx)
        if watch is not None:
            watch.stop()
    msgs = [m for m, _ in received]
    start_stamp = min((conversions.stamp_to_seconds(m.header.stamp) for _, _, m in player.records
                       if type(m).__name__ in SENSOR_TYPES), default=0.0)
    return recorded_session(str(bag), msgs, start_stamp), measured_latency(player.published, received), log_path


def measured_latency(published, received) -> LiveLatency:
    """`published`: (topic, message, wall time) as the player sent them; `received`: (AffectArray, wall
    time of arrival). Each AffectArray with a face is matched to the camera image of its stamp (the
    nearest); the first estimate is timed from the first camera image published."""
    frames = [(m, wall) for _, m, wall in published if type(m).__name__ in ("Image", "CompressedImage")]
    out = LiveLatency()
    if not frames:
        return out
    images = {}
    for m, wall in frames:     # header stamp -> its first publication
        images.setdefault(round(conversions.stamp_to_seconds(m.header.stamp) * 1e9), wall)
    stamps = sorted(images)
    first_stamp, first_wall = conversions.stamp_to_seconds(frames[0][0].header.stamp), frames[0][1]
    for msg, wall in received:
        if not any(p.modalities & conversions.MODALITY_FACE for p in msg.people):
            continue
        t = conversions.stamp_to_seconds(msg.header.stamp)
        i = bisect.bisect_left(stamps, t * 1e9)
        near = min((stamps[j] for j in (i - 1, i) if 0 <= j < len(stamps)), key=lambda s: abs(s - t * 1e9))
        out.since_first_s.append(t - first_stamp)
        out.latency_s.append(wall - images[near])
        if out.first_estimate_s is None:
            out.first_estimate_s = wall - first_wall
    return out
