"""Lifecycle over the real services while data flows: configure, activate, deactivate, activate,
cleanup, configure, activate, three times, then shutdown, for each node as its own process. After
every transition the node's publishers/subscriptions are what that state should have, output and
/diagnostics resume after each activate, and after shutdown the process exits by itself."""
import threading
import time

import numpy as np
import pytest
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from diagnostic_msgs.msg import DiagnosticArray
from emo_perception_msgs.msg import AffectArray, AudioEmbedding, FaceEmbeddingArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from bad_input_cases import covers
from emo_perception import conversions
from emo_perception.nodes.node_support import INFO_QOS
from media import demo_frame, speech_16k
from node_harness import Harness, NodeProcess

pytestmark = pytest.mark.ros

T = Transition
# (cleanup is only defined from inactive, so every cleanup follows a deactivate)
CYCLE = [(T.TRANSITION_CONFIGURE, "inactive"), (T.TRANSITION_ACTIVATE, "active"),
         (T.TRANSITION_DEACTIVATE, "inactive"), (T.TRANSITION_ACTIVATE, "active"),
         (T.TRANSITION_DEACTIVATE, "inactive"), (T.TRANSITION_CLEANUP, "unconfigured"),
         (T.TRANSITION_CONFIGURE, "inactive"), (T.TRANSITION_ACTIVATE, "active"),
         (T.TRANSITION_DEACTIVATE, "inactive"), (T.TRANSITION_CLEANUP, "unconfigured")]
# Namespaces of their own: nodes of the same name from earlier tests in this ROS domain can linger
# in the graph for a while after their process ended, and would mix into the entity counts.
NODES = {   # node -> (namespace, output topic, output type)
    "face_embedding_node": ("/lc", "/lc/faces/embeddings", FaceEmbeddingArray),
    "audio_embedding_node": ("/lc", "/lc/audio/embeddings", AudioEmbedding),
    "fusion_node": ("/lc/f", "/lc/f/affect", AffectArray),   # fed by the test, not by the audio node
}
OWN = {"/rosout", "/parameter_events"}   # every node has these


class Managed:
    """Lifecycle client of one node; answers are retried (a reply can be lost during discovery)."""

    def __init__(self, h, name, ns):
        base = f"{ns.rstrip('/')}/{name}"
        self.h, self.name, self.ns = h, name, ns
        self.change = h.node.create_client(ChangeState, f"{base}/change_state")
        self.state = h.node.create_client(GetState, f"{base}/get_state")
        assert self.change.wait_for_service(timeout_sec=60) and self.state.wait_for_service(timeout_sec=10)

    def _call(self, client, request, timeout):
        fut = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not fut.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        return fut.result() if fut.done() else None

    def label(self):
        for _ in range(5):
            res = self._call(self.state, GetState.Request(), 3)
            if res is not None:
                return res.current_state.label
        raise AssertionError(f"{self.name}: get_state never answered")

    def transition(self, tid, expected):
        res = self._call(self.change, ChangeState.Request(transition=Transition(id=tid)), 30)
        assert (res is not None and res.success) or self.label() == expected, f"{self.name}: transition {tid}"
        assert self.label() == expected

    def entities(self):
        node = self.h.node
        pubs = {t for t, _ in node.get_publisher_names_and_types_by_node(self.name, self.ns)} - OWN
        subs = {t for t, _ in node.get_subscriber_names_and_types_by_node(self.name, self.ns)} - OWN
        return frozenset(pubs), frozenset(subs)


def _pump(src, stop):
    """Camera 10 Hz, microphone chunks, audio embeddings for the fusion node, until `stop`."""
    image = src.create_publisher(Image, "/lc/image", qos_profile_sensor_data)
    audio = src.create_publisher(AudioDataStamped, "/lc/audio_stamped", qos_profile_sensor_data)
    info = src.create_publisher(AudioInfo, "/lc/audio_info", INFO_QOS)
    emb = src.create_publisher(AudioEmbedding, "/lc/f/audio/embeddings", 10)
    info.publish(AudioInfo(channels=1, sample_rate=16000, sample_format="S16LE", coding_format="wave"))
    frame, speech = conversions.rgb_to_image(demo_frame()), speech_16k(30.0)
    t, k = 100.0, 0
    while not stop.is_set():
        if k % 6 == 0:   # every 6th 16 ms tick: ~10 Hz
            frame.header.stamp = conversions.seconds_to_stamp(t)
            image.publish(frame)
        chunk = AudioDataStamped()
        chunk.header.stamp = conversions.seconds_to_stamp(t)
        chunk.audio.data = conversions.mono_to_audio_bytes(speech[(k * 256) % 400000:(k * 256) % 400000 + 256])
        audio.publish(chunk)
        if k % 2 == 0:   # 32 ms: close to the fusion grid
            e = AudioEmbedding(model_id="logmel_stats@1", voice_probability=0.9, loudness_dbfs=-20.0,
                               embedding=np.zeros(128, np.float32).tolist())
            e.header.stamp = conversions.seconds_to_stamp(t)
            emb.publish(e)
        t, k = t + 0.016, k + 1
        time.sleep(0.016)


@covers("lifecycle")
def test_lifecycle_cycles_leave_no_residue_and_output_resumes_after_every_activate():
    procs = [NodeProcess(n, "-p", "autostart:=false", "-p", "diagnostics_period:=0.2", "-r", f"__ns:={ns}")
             for n, (ns, _, _) in NODES.items()]
    h = Harness()
    src = Harness("lifecycle_sources")   # its own context: the sources never wait on the test's executor
    stop = threading.Event()
    try:
        outputs = {n: h.collect(typ, topic) for n, (_, topic, typ) in NODES.items()}
        diags = h.collect(DiagnosticArray, "/diagnostics")
        managed = {n: Managed(h, n, ns) for n, (ns, _, _) in NODES.items()}
        pump = threading.Thread(target=_pump, args=(src.node, stop), daemon=True)
        pump.start()
        seen = {}   # (node, state) -> entities the first time
        for rep in range(2):     # the second cycle is compared with the first
            for tid, state in CYCLE:
                marks = {n: (len(outputs[n]), len(diags)) for n in NODES}
                for n, m in managed.items():
                    m.transition(tid, state)
                for n, m in managed.items():
                    key = (n, state)
                    # graph changes reach the test's node asynchronously: wait for the state's entities
                    if key in seen:
                        h.wait_for(lambda: m.entities() == seen[key], 10, f"{n} {state} entities as before")
                    elif state == "unconfigured":   # only the lifecycle's own transition_event
                        h.wait_for(lambda: m.entities() == (frozenset({f"{m.ns.rstrip('/')}/{n}/transition_event"}),
                                                            frozenset()), 10, f"{n} holds nothing")
                    elif state == "inactive":
                        h.wait_for(lambda: m.entities()[1] == frozenset() and m.entities()[0], 10, f"{n} no subs")
                    else:
                        h.wait_for(lambda: all(m.entities()), 10, f"{n} pubs and subs")
                    seen.setdefault(key, m.entities())
                if state == "active":
                    for n in NODES:
                        h.wait_for(lambda: len(outputs[n]) > marks[n][0], 15, f"{n} output after activate ({rep})")
                        h.wait_for(lambda: any(s.name.endswith(n) for d in diags[marks[n][1]:] for s in d.status),
                                   10, f"{n} /diagnostics after activate ({rep})")
        for n, m in managed.items():
            m.transition(T.TRANSITION_CONFIGURE, "inactive")
            m.transition(T.TRANSITION_ACTIVATE, "active")
        for n in NODES:
            h.wait_for(lambda: len(outputs[n]) > 0, 10, "output before shutdown")
        for n, m in managed.items():   # the reply may not make it out: the process exits once finalized
            m.change.call_async(ChangeState.Request(transition=Transition(id=T.TRANSITION_ACTIVE_SHUTDOWN)))
        exits = {p: p.wait_exit(15) for p in procs}
        after = {n: len(outputs[n]) for n in NODES}
        time.sleep(0.5)
    finally:
        stop.set()
        pump.join(timeout=5)
        src.close()
        h.close()
        for p in procs:
            p.stop()
    assert all(code == 0 for code in exits.values()), [p.log()[-1500:] for p in procs]
    assert after == {n: len(outputs[n]) for n in NODES}   # nothing after shutdown
    for n in NODES:   # what each state holds, e.g. active: outputs + /diagnostics + subscriptions
        assert seen[(n, "active")][1] and seen[(n, "inactive")][0] == seen[(n, "active")][0]
    assert "/diagnostics" in seen[("fusion_node", "inactive")][0]
    assert seen[("face_embedding_node", "active")][1] == {"/lc/image"}
    for p in procs:
        assert "Traceback" not in p.log(), p.log()[-2000:]


def test_configure_cleanup_cycles_leave_no_timers_publishers_or_subscriptions_behind():
    """The entity counts inside the process (timers are invisible from the graph)."""
    import rclpy
    from rclpy.lifecycle import TransitionCallbackReturn

    from emo_perception.nodes.all_in_one import NODES as NODE_CLASSES
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        for cls in NODE_CLASSES:
            node = cls(context=ctx)

            def counts():
                return len(list(node.timers)), len(list(node.publishers)), len(list(node.subscriptions))
            base, states = counts(), []
            for _ in range(3):
                for step in (node.trigger_configure, node.trigger_activate, node.trigger_deactivate,
                             node.trigger_activate):
                    assert step() == TransitionCallbackReturn.SUCCESS
                states.append(counts())
                node.trigger_deactivate()
                node.trigger_cleanup()
                assert counts() == base, cls.__name__
            assert states[0] == states[1] == states[2] and states[0][0] > base[0]
            node.trigger_shutdown()
            assert counts() == base and node.finalized
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
