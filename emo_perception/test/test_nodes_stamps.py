"""Streams as robots deliver them, through ROS: sensors that do not stamp (every stamp 0), one bad
audio stamp, a lost audio chunk, and several unsupported encodings in a row. Node processes over
Fast DDS; each test names the bad-input cases it sends (bad_input_cases.py)."""
import re
import time

import numpy as np
import pytest
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from emo_perception_msgs.msg import AffectArray, AudioEmbedding, FaceEmbeddingArray
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import Image

from bad_input_cases import covers
from emo_perception import conversions
from emo_perception.nodes.node_support import INFO_QOS
from media import demo_frame, speech_16k
from node_harness import Harness, NodeProcess

pytestmark = pytest.mark.ros

RELIABLE = QoSProfile(depth=200, reliability=QoSReliabilityPolicy.RELIABLE)
INFO_16K = AudioInfo(channels=1, sample_rate=16000, sample_format="S16LE", coding_format="wave")
CHUNK = 1024             # 64 ms, as audio_capture sends them


def _chunk(samples, t):
    msg = AudioDataStamped()
    msg.header.stamp = conversions.seconds_to_stamp(t)
    msg.audio.data = conversions.mono_to_audio_bytes(samples)
    return msg


def _image(t, frame_id="camera", encoding=None):
    msg = conversions.rgb_to_image(demo_frame())
    msg.header.stamp, msg.header.frame_id = conversions.seconds_to_stamp(t), frame_id
    if encoding:
        msg.encoding = encoding
    return msg


def _seconds(msgs):
    return np.array([conversions.stamp_to_seconds(m.header.stamp) for m in msgs])


def _status(diags, node):
    """Newest /diagnostics status of the node with this fully qualified name: (level, message, values)."""
    for m in reversed(diags):
        for st in m.status:
            if st.hardware_id == node:
                return st.level, st.message, {kv.key: kv.value for kv in st.values}
    return None, "", {}


def _error_lines(log, text):
    return [ln for ln in log.splitlines() if text in ln and "[ERROR]" in ln]


@covers("unstamped_images")
def test_images_stamped_zero_are_said_once_and_never_move_the_fusion():
    """2 s of good input, then 2.5 s of camera frames stamped 0 (audio goes on), then good frames
    again. Before: the fusion's time base flipped between 0 and the audio clock (32 'fusion state
    reset' lines) and AffectArrays came out stamped near 0."""
    t0, ns = 3000.0, "/unst"
    proc = NodeProcess("all_in_one", "-p", "diagnostics_period:=0.5", "-r", f"__ns:={ns}")
    h = Harness()
    try:
        affect = h.collect(AffectArray, f"{ns}/affect")
        diags = h.collect(DiagnosticArray, "/diagnostics")
        image = h.node.create_publisher(Image, f"{ns}/image", RELIABLE)
        audio = h.node.create_publisher(AudioDataStamped, f"{ns}/audio_stamped", RELIABLE)
        info = h.node.create_publisher(AudioInfo, f"{ns}/audio_info", INFO_QOS)
        h.wait_for(lambda: all(p.get_subscription_count() > 0 for p in (image, audio, info))
                   and h.node.count_publishers(f"{ns}/affect") > 0 and "fusion mode" in proc.log(), 60,
                   "emo_perception_all")
        info.publish(INFO_16K)
        time.sleep(0.5)
        speech, seconds, fps = speech_16k(6.0), 6.0, 10.0
        events = [(k / fps, "image", t0 + k / fps) for k in range(int(seconds * fps))]
        events += [((k + 1) * CHUNK / 16000, "audio", k) for k in range(int(seconds * 16000) // CHUNK)]
        start = time.monotonic()
        for at, kind, x in sorted(events, key=lambda e: e[0]):
            time.sleep(max(0.0, start + at - time.monotonic()))
            if kind == "image":
                unstamped = t0 + 2.0 <= x < t0 + 4.5
                image.publish(_image(0.0 if unstamped else x))
            else:
                audio.publish(_chunk(speech[x * CHUNK:(x + 1) * CHUNK], t0 + x * CHUNK / 16000))
        time.sleep(1.5)
    finally:
        h.close()
        proc.stop()
    log = proc.log()
    stamps = _seconds(affect)
    assert len(stamps) > 100 and stamps.min() >= t0, f"AffectArray stamped off the recording: {stamps.min()}"
    assert (stamps > t0 + 4.7).sum() > 15, "affect did not go on after the camera stamped again"
    assert log.count("fusion state reset") == 0, "the unstamped camera moved the fusion's time base"
    said = _error_lines(log, "image (frame_id 'camera'): 3 frames in a row with one stamp (header.stamp is left at 0)")
    assert len(said) == 1 and "stamp_source" in said[0], log[-3000:]
    assert "image (frame_id 'camera'): stamps move again" in log
    face = [(s.level, s.message, {kv.key: kv.value for kv in s.values}) for m in diags for s in m.status
            if s.name.endswith("face_embedding_node")]
    # ERROR while it lasts: every period in which unstamped frames were dropped (the message may be another
    # ERROR's, e.g. processing time on a loaded machine)
    counts = [int(v.get("unstamped_frames", 0)) for _, _, v in face]
    dropping = [face[i][0] for i in range(1, len(face)) if counts[i] > counts[i - 1]]
    assert dropping and set(dropping) == {DiagnosticStatus.ERROR}, sorted({(lvl, msg[:80]) for lvl, msg, _ in face})
    assert counts[-1] >= 3                                   # (the node processes the newest frame per tick)
    assert "Traceback" not in log


@covers("unsupported_encodings")
def test_face_node_on_arrival_time_and_every_unsupported_encoding_logged():
    """stamp_source arrival: frames stamped 0 come out stamped with their arrival on the node's clock.
    Then three unsupported encodings within a second: each is named in the log (before: only the
    first; the throttle was keyed on the message's first 40 characters)."""
    node = NodeProcess("face_embedding_node", "-p", "stamp_source:=arrival", "-p", "processing_rate:=20.0",
                       "-r", "__ns:=/arrf")
    h = Harness()
    try:
        out = h.collect(FaceEmbeddingArray, "/arrf/faces/embeddings")
        pub = h.node.create_publisher(Image, "/arrf/image", RELIABLE)
        h.wait_for(lambda: pub.get_subscription_count() > 0 and "face model" in node.log(), 60, "face node")
        sent = []
        for _ in range(8):
            sent.append(time.time())
            pub.publish(_image(0.0))
            time.sleep(0.15)
        h.wait_for(lambda: len(out) >= 6, 20, "faces of the unstamped frames")
        for encoding in ("16UC1", "nv12", "32FC1"):
            pub.publish(_image(0.0, encoding=encoding))
            time.sleep(0.3)
        time.sleep(0.5)
    finally:
        h.close()
        node.stop()
    stamps = _seconds(out)
    assert np.all(np.diff(stamps) > 0.05), stamps                    # on arrival: they move
    assert abs(stamps[0] - sent[0]) < 2.0 and stamps[-1] <= time.time()   # the node's clock (system time)
    assert all(len(m.faces) == 1 for m in out)
    log = node.log()
    for encoding in ("16UC1", "nv12", "32FC1"):
        assert f"unsupported image encoding '{encoding}'" in log, encoding
    assert "unstamped" not in log and "Traceback" not in log


def _start_audio_node(h, ns, *params):
    node = NodeProcess("audio_embedding_node", "-p", "input_reliability:=reliable", "-p", "diagnostics_period:=0.3",
                       *params, "-r", f"__ns:={ns}")
    out = h.collect(AudioEmbedding, f"{ns}/audio/embeddings")
    info = h.node.create_publisher(AudioInfo, f"{ns}/audio_info", INFO_QOS)
    pub = h.node.create_publisher(AudioDataStamped, f"{ns}/audio_stamped", RELIABLE)
    return node, out, info, pub


@covers("unstamped_audio")
def test_audio_stamped_zero_is_said_once_and_stamped_on_arrival_when_asked():
    """A driver that leaves every audio stamp at 0. Before: every chunk was dropped as out of order and
    /diagnostics said OK. Now one ERROR naming the input and the cause, /diagnostics ERROR; with
    stamp_source arrival (stamp_position end) the chunks are stamped when they arrive."""
    h = Harness()
    header, header_out, header_info, header_pub = _start_audio_node(h, "/hdr")
    arrival, arrival_out, arrival_info, arrival_pub = _start_audio_node(
        h, "/arr", "-p", "stamp_source:=arrival", "-p", "stamp_position:=end")
    diags = h.collect(DiagnosticArray, "/diagnostics")
    try:
        h.wait_for(lambda: all(p.get_subscription_count() > 0 for p in (header_info, header_pub, arrival_info,
                                                                        arrival_pub)), 60, "audio nodes")
        header_info.publish(INFO_16K)
        arrival_info.publish(INFO_16K)
        time.sleep(0.5)
        speech = speech_16k(3.0)
        start, sent_from = time.monotonic(), time.time()
        for k in range(len(speech) // CHUNK):       # at the pace a microphone delivers them
            time.sleep(max(0.0, start + (k + 1) * CHUNK / 16000 - time.monotonic()))
            for pub in (header_pub, arrival_pub):
                pub.publish(_chunk(speech[k * CHUNK:(k + 1) * CHUNK], 0.0))
        sent_until = time.time()
        h.wait_for(lambda: len(arrival_out) >= 20, 15, "embeddings of the chunks stamped on arrival")
        h.wait_for(lambda: _status(diags, "/hdr/audio_embedding_node")[0] == DiagnosticStatus.ERROR, 10,
                   "diagnostics ERROR for the unstamped audio")
        level, message, values = _status(diags, "/hdr/audio_embedding_node")
    finally:
        h.close()
        header.stop()
        arrival.stop()
    assert not header_out
    assert "unstamped_chunks" in message and int(values["unstamped_chunks"]) > 30
    said = _error_lines(header.log(), "audio_stamped: 3 chunks in a row with one stamp (header.stamp is left at 0)")
    assert len(said) == 1 and "stamp_source to 'arrival'" in said[0]
    stamps = _seconds(arrival_out)
    # on the node's clock (system time): within the sending, give or take transport and scheduling
    assert sent_from < stamps[0] and stamps[-1] < sent_until + 2.0 and np.all(np.diff(stamps) > 0)
    assert np.median(np.diff(stamps)) == pytest.approx(0.04, abs=1e-3)
    assert "unstamped" not in arrival.log() and "Traceback" not in header.log() + arrival.log()


@covers("odd_byte_chunk")
@covers("zero_stamp_chunk")
def test_a_lost_chunk_and_one_bad_stamp_move_no_embedding():
    """6 s of audio_capture-style chunks; chunk 30 has an odd byte count (dropped), chunk 60 is stamped
    0. Every embedding must sit exactly where it sits without either fault: before, everything after
    chunk 30 was stamped 64 ms early with no gap counted, and the stamp 0 restarted the stream twice
    (1.1 s of embeddings lost)."""
    t0 = 400.0
    h = Harness()
    node, out, info, pub = _start_audio_node(h, "/lost")
    diags = h.collect(DiagnosticArray, "/diagnostics")
    speech = speech_16k(6.0)
    n_chunks = len(speech) // CHUNK
    try:
        h.wait_for(lambda: pub.get_subscription_count() > 0 and info.get_subscription_count() > 0, 60, "audio node")
        info.publish(INFO_16K)
        time.sleep(0.5)
        for k in range(n_chunks):
            msg = _chunk(speech[k * CHUNK:(k + 1) * CHUNK], t0 + k * CHUNK / 16000)
            if k == 30:
                msg.audio.data = bytes(msg.audio.data)[:-1]             # 2047 bytes of S16LE
            if k == 60:
                msg.header.stamp = conversions.seconds_to_stamp(0.0)
            pub.publish(msg)
            time.sleep(0.01)
        last = t0 + n_chunks * CHUNK / 16000
        h.wait_for(lambda: out and conversions.stamp_to_seconds(out[-1].header.stamp) > last - 0.05, 20,
                   "embeddings to the end")
        h.wait_for(lambda: int(_status(diags, "/lost/audio_embedding_node")[2].get("bad_stamps", 0)) == 1,
                   10, "the bad stamp counted")
        _, _, values = _status(diags, "/lost/audio_embedding_node")
    finally:
        h.close()
        node.stop()
    got = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in out]
    n_windows = (n_chunks * CHUNK - 15600) // 640 + 1
    expected = [int(round((t0 + (15600 + k * 640) / 16000) * 1e9)) for k in range(n_windows)]
    assert len(got) == len(expected), f"{len(got)} embeddings, {len(expected)} without the faults"
    assert max(abs(a - b) for a, b in zip(got, expected)) <= 2, "an embedding moved"
    assert int(values["gaps"]) == 1 and int(values["gaps_filled"]) == 1 and int(values["chunks_rejected"]) == 1
    assert int(values.get("time_jumps", 0)) == 0
    log = node.log()
    assert re.search(r"2047 audio bytes is not a whole number", log)
    assert "64 ms of samples missing before 401.984 s" in log and "filled with silence" in log
    assert "chunk stamped 0.000 s disagrees with the chunks around it" in log and "jumped" not in log
