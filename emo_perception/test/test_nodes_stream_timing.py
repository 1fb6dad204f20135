"""Streams as robots deliver them, through the node processes: a camera whose frames arrive 0.6 s after
their stamps, and a fusion with no microphone at all. When a fused step may go out: core/alignment.py."""
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from emo_perception_msgs.msg import Affect, AffectArray, AudioEmbedding, FaceEmbeddingArray
from rclpy.duration import Duration

from bad_input_cases import covers
from emo_perception.nodes.media_sources import CameraSource, MicrophoneSource
from media import demo_frame, speech_16k
from node_harness import Harness, NodeProcess, latest_status, ok_or_busy

pytestmark = pytest.mark.ros

CAMERA_LAG = 0.6     # s: USB capture + driver, or a face node slowed by load


def _t(stamp):
    return stamp.sec + stamp.nanosec * 1e-9


def _with(msg, modality):
    return any(p.modalities & modality for p in msg.people)


@covers("late_camera")
@covers("no_microphone")
def test_a_late_camera_is_fused_by_stamp_and_nothing_waits_for_a_microphone_that_is_not_there():
    procs = [NodeProcess("face_embedding_node", "-r", "image:=/cam/image"),
             NodeProcess("audio_embedding_node", "-r", "audio_stamped:=/mic/audio_stamped",
                         "-r", "audio_info:=/mic/audio_info"),
             NodeProcess("fusion_node"),
             # the same embeddings with max_lag below the camera's lag: it must say so
             NodeProcess("fusion_node", "-r", "__node:=fusion_strict", "-r", "affect:=/strict/affect",
                         "-p", "max_lag:=0.05"),   # waited until the audio is 0.35 s past a step: the
                         # newest face then trails it by ~0.25 s, beyond `hold` (0.2 s) with the face node's
                         # own delay near 0 (it processes on arrival: issue 21)
             # camera only: its audio topic has no publisher
             NodeProcess("fusion_node", "-r", "__node:=fusion_camera_only", "-r", "affect:=/camera_only/affect",
                         "-r", "audio/embeddings:=/nobody/audio_embeddings")]
    h = Harness()
    received = {}
    try:
        affect = h.collect(AffectArray, "affect")
        strict = h.collect(AffectArray, "/strict/affect")
        camera_only = []
        h.node.create_subscription(AffectArray, "/camera_only/affect",
                                   lambda m: camera_only.append((time.monotonic(), m)), 10)
        h.node.create_subscription(FaceEmbeddingArray, "faces/embeddings",
                                   lambda m: received.setdefault(_t(m.header.stamp), time.monotonic()), 10)
        audio = h.collect(AudioEmbedding, "audio/embeddings")
        diags = h.collect(DiagnosticArray, "/diagnostics")
        h.wait_for(lambda: h.node.count_subscribers("/cam/image") > 0 and
                   h.node.count_subscribers("/mic/audio_stamped") > 0 and
                   h.node.count_subscribers("faces/embeddings") >= 4 and
                   h.node.count_publishers("/camera_only/affect") > 0, 90, "the nodes")
        cam = CameraSource(h.node, [demo_frame()], rate=15.0, topic="/cam/image")
        cam.timer.cancel()     # stamped 0.6 s before publication instead
        late = Duration(nanoseconds=int(CAMERA_LAG * 1e9))
        h.node.create_timer(1 / 15, lambda: cam.publish_next((h.node.get_clock().now() - late).to_msg()))
        mic = MicrophoneSource(h.node, speech_16k(30.0), topic_prefix="/mic/")

        # 3 s of fused data time after the microphone's first embedding
        try:
            h.wait_for(lambda: audio and affect and _t(affect[-1].header.stamp) - _t(audio[0].header.stamp) > 3.0,
                       60, "3 s of fused face and voice")
        except AssertionError as err:
            raise AssertionError(f"{err}: {len(affect)} affect, {len(audio)} audio embeddings, {len(received)} face "
                                 f"embeddings; logs: {[p.log()[-1500:] for p in procs]}") from None
        time.sleep(1.5)      # two diagnostics periods with both streams
        mic.timer.cancel()
        logs = [p.log() for p in procs]      # before stopping them: a publisher torn down mid-call is not ours
    finally:
        h.close()
        for p in procs:
            p.stop()
    for log in logs:
        assert "Traceback" not in log, log[-3000:]

    # 1. faces are fused by stamp in every step once both streams run (before: 0 %, all dropped as late)
    since = _t(audio[0].header.stamp) + 0.5      # the microphone joined (max_wait after its first stamp)
    both = [m for m in affect if _t(m.header.stamp) > since]
    assert len(both) > 40
    with_face = np.mean([_with(m, Affect.MODALITY_FACE) for m in both])
    with_voice = np.mean([_with(m, Affect.MODALITY_VOICE) for m in both])
    # (a face node stalled longer than `hold` under load leaves a hole; the voice is there while speech is)
    level, message, values = latest_status(diags, "fusion_node")
    face_t = np.array(sorted(received))
    holes = [round(_t(m.header.stamp) - since, 2) for m in both if not _with(m, Affect.MODALITY_FACE)]
    assert with_face >= 0.85 and with_voice > 0.2, (with_face, with_voice, holes, np.diff(face_t).max(), values,
                                                   latest_status(diags, "face_embedding_node"))
    assert ok_or_busy(level, message), message
    # measured: the camera's lag plus the face node's own delay (the largest of the last 50 frames)
    assert CAMERA_LAG - 0.1 < float(values["face_lag_s"]) < CAMERA_LAG + 0.4, values
    assert int(values["late_dropped"]) <= 2, values

    # 2. max_lag below the lag: the faces are dropped as late and /diagnostics WARNs naming both
    strict_status = [st for m in diags for st in m.status if st.name.endswith("fusion_strict")]
    warned = [st for st in strict_status if st.level == DiagnosticStatus.WARN and "max_lag (0.05 s)" in st.message]
    assert warned and "face embeddings" in warned[-1].message, [st.message for st in strict_status]
    assert float({kv.key: kv.value for kv in warned[-1].values}["face_lag_s"]) > 0.4
    strict_faces = np.mean([_with(m, Affect.MODALITY_FACE) for m in strict if _t(m.header.stamp) > since + 1.0])
    assert strict_faces < 0.5, strict_faces     # a frame within `hold` of a step can still stand in for it

    # 3. camera only: each step goes out when the face embedding that covers it arrives, the first
    # with the first one (before: max_wait, 0.3 s of data time, after it)
    assert len(camera_only) > 50 and not any(_with(m, Affect.MODALITY_VOICE) for _, m in camera_only)
    stamps = np.array(sorted(received))
    waits = []
    for at, m in camera_only:
        t = _t(m.header.stamp)
        covering = stamps[stamps >= t - 1e-6]
        if len(covering) and covering[0] in received:
            waits.append(at - received[covering[0]])
    assert len(waits) > 50
    # in data time (the fusion's own record, whatever the machine's load): the first step and the
    # recent ones went out with the face embedding that covers them, less than a frame period behind
    # (waiting max_wait for the microphone: 0.3 s and more)
    _, _, only = latest_status(diags, "fusion_camera_only")
    assert float(only["step_wait_first_s"]) < 0.1 and float(only["step_wait_p95_s"]) < 0.1, only
    # and on the wall clock (bounds loose enough for two test files at once on 2 cores: a stalled
    # process delays one message by up to 0.6 s there; bench/ measures latency)
    assert np.median(waits) < 0.1 and np.percentile(waits, 90) < 0.25, (waits[0], np.median(waits),
                                                                          np.percentile(waits, 90))
