"""Bad input through ROS: nodes log what was wrong, report it on /diagnostics and keep running;
bad configuration fails at start-up. Each node runs in its own process."""
import time

import numpy as np
import pytest
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from emo_perception_msgs.msg import AudioEmbedding, FaceEmbeddingArray
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from emo_perception import conversions
from bad_input_cases import covers
from emo_perception.nodes.node_support import INFO_QOS
from media import demo_frame, speech_16k
from node_harness import Harness, NodeProcess, latest_status

pytestmark = pytest.mark.ros

FRAME = demo_frame()


def _has_hri():
    try:
        import hri_msgs  # noqa: F401
        return True
    except ImportError:
        return False


def _stamp(t):
    return Time(sec=int(t), nanosec=int(round((t % 1) * 1e9)))


_diag = latest_status


def _image(t, encoding="rgb8"):
    msg = conversions.rgb_to_image(FRAME, "rgb8")
    msg.header.stamp = _stamp(t)
    msg.encoding = encoding
    return msg


@covers("unknown_encoding")
@covers("degenerate_image")
@covers("older_frame")
@covers("burst")
@covers("camera_silent")
@covers("camera_restart")
def test_face_node_survives_bad_encodings_bursts_old_stamps_and_a_camera_restart():
    node = NodeProcess("face_embedding_node", "-p", "processing_rate:=20.0", "-p", "diagnostics_period:=0.5")
    h = Harness()
    try:
        out = h.collect(FaceEmbeddingArray, "faces/embeddings")
        diags = h.collect(DiagnosticArray, "/diagnostics")
        pub = h.node.create_publisher(Image, "image", qos_profile_sensor_data)
        h.wait_for(lambda: pub.get_subscription_count() > 0, 60, "face node subscription")

        def send(t, encoding="rgb8", wait=True):
            pub.publish(_image(t, encoding))
            deadline = time.monotonic() + 30
            # best effort: the very first frames can be lost while discovery completes; resend
            while wait and not any(m.header.stamp == _stamp(t) for m in out):
                assert time.monotonic() < deadline, f"no faces for the frame at {t}"
                time.sleep(0.3)
                if not any(m.header.stamp == _stamp(t) for m in out):
                    pub.publish(_image(t, encoding))

        send(100.0)
        send(100.1, "bayer_rggb8", wait=False)                 # unknown encoding: rejected, logged
        time.sleep(0.5)
        strip = conversions.rgb_to_image(np.zeros((1, 6000, 3), np.uint8))
        strip.header.stamp = _stamp(100.15)
        pub.publish(strip)                                     # a 6000x1 line: no face, no crash
        h.wait_for(lambda: any(m.header.stamp == _stamp(100.15) and not m.faces for m in out), 10, "the 6000x1 frame")
        send(100.2)                                            # and the node goes on
        send(100.17, wait=False)                               # older than the last frame: dropped
        time.sleep(0.5)
        for k in range(30):                                    # a burst: newest wins, the rest skipped
            pub.publish(_image(101.0 + k * 0.001))
        h.wait_for(lambda: any(m.header.stamp == _stamp(101.029) for m in out), 20, "newest frame of burst")
        # the rest were not processed one by one: skipped by the node (counted below) or, when its input
        # queue was full while it worked, dropped before it (the subscription keeps the newest)
        burst_out = sum(1 for m in out if 101.0 <= conversions.stamp_to_seconds(m.header.stamp) < 101.03)
        assert burst_out <= 5, burst_out
        h.wait_for(lambda: _diag(diags, "face_embedding_node")[0] == DiagnosticStatus.WARN, 15,
                   "diagnostics WARN while the camera is silent")
        send(110.0, wait=False)                                # camera restarts 9 s of data time later:
        time.sleep(0.3)                                        # held until the next frame confirms it
        send(110.1)
    finally:
        h.close()
        node.stop()
    log = node.log()
    assert "unsupported image encoding 'bayer_rggb8'" in log and "rgb8" in log
    assert "older than the previous one" in log
    _, _, values = _diag(diags, "face_embedding_node")
    assert int(values["frames_rejected"]) == 1 and int(values["frames_out_of_order"]) == 1
    stamps = [m.header.stamp for m in out]
    assert _stamp(100.1) not in stamps and _stamp(100.17) not in stamps
    assert len(stamps) < 11                                    # the burst did not queue up
    assert "jumped forward 8.971 s" in log                     # the restart is a time jump: tracks reset
    after = [m for m in out if m.header.stamp == _stamp(110.1)][0]
    before = [m for m in out if m.header.stamp == _stamp(100.0)][0]
    assert len(after.faces) == 1 and after.faces[0].track_id != before.faces[0].track_id   # track ended


@covers("mp3_info")
@covers("resampled_audio")
@covers("audio_out_of_order")
def test_audio_node_rejects_mp3_then_handles_48k_stereo_and_out_of_order_chunks():
    node = NodeProcess("audio_embedding_node", "-p", "diagnostics_period:=0.5", "-p", "stamp_position:=start")
    h = Harness()
    try:
        out = h.collect(AudioEmbedding, "audio/embeddings")
        diags = h.collect(DiagnosticArray, "/diagnostics")
        info_pub = h.node.create_publisher(AudioInfo, "audio_info", INFO_QOS)
        pub = h.node.create_publisher(AudioDataStamped, "audio_stamped", qos_profile_sensor_data)
        h.wait_for(lambda: pub.get_subscription_count() > 0 and info_pub.get_subscription_count() > 0, 60,
                   "audio node subscriptions")
        info_pub.publish(AudioInfo(channels=1, sample_rate=16000, sample_format="S16LE", coding_format="mp3"))
        h.wait_for(lambda: "format:=wave" in _diag(diags, "audio_embedding_node")[1], 15, "mp3 diagnosis")
        assert _diag(diags, "audio_embedding_node")[0] == DiagnosticStatus.ERROR
        info_pub.publish(AudioInfo(channels=2, sample_rate=48000, sample_format="S16LE", coding_format="wave"))
        time.sleep(0.5)
        speech48 = np.repeat(speech_16k(4.0), 3)               # 48 kHz, content below 8 kHz
        chunk = 4800                                           # 0.1 s
        for k in range(len(speech48) // chunk):
            msg = AudioDataStamped()
            msg.header.stamp = _stamp(200.0 + k * 0.1)
            msg.audio.data = conversions.mono_to_audio_bytes(speech48[k * chunk:(k + 1) * chunk], "S16LE", 2)
            pub.publish(msg)
            if k == 20:
                late = AudioDataStamped(audio=msg.audio)
                late.header.stamp = _stamp(200.0 + 15 * 0.1)   # out of order: dropped, counted
                pub.publish(late)
            if k == 25:
                pub.publish(msg)                               # duplicate: dropped, counted
            time.sleep(0.02)
        h.wait_for(lambda: len(out) >= 70, 20, "embeddings from 48 kHz stereo")
        h.wait_for(lambda: int(_diag(diags, "audio_embedding_node")[2].get("chunks_out_of_order", 0)) == 2, 10,
                   "out-of-order and duplicate chunks counted")
    finally:
        h.close()
        node.stop()
    assert "format:=wave" in node.log()
    t = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in out])
    assert t[0] == np.float64(200.975) or abs(t[0] - 200.975) < 0.01   # window end on the audio clock
    assert np.allclose(np.diff(t), 0.04, atol=2e-3)
    assert max(m.voice_probability for m in out) > 0.5                 # speech survives resampling


@covers("missing_model")
@covers("hri_without_msgs")
def test_bad_configuration_and_missing_model_fail_at_start_up():
    bad_mode = NodeProcess("fusion_node", "-p", "mode:=magic")
    missing = NodeProcess("face_embedding_node", "-p", "face_model:=/nonexistent/face.json")
    # the optional ROS4HRI output is never a hard dependency: asking for it without hri_msgs is bad config
    no_hri = None if _has_hri() else NodeProcess("fusion_node", "-p", "publish_hri:=true")
    try:
        assert bad_mode.wait_exit(60) == 1
        assert missing.wait_exit(60) == 1
        assert no_hri is None or no_hri.wait_exit(60) == 1
    finally:
        for p in (bad_mode, missing, no_hri):
            if p is not None:
                p.stop()
    assert no_hri is None or "'publish_hri' is true but hri_msgs is not installed" in no_hri.log()
    assert "parameter 'mode' is 'magic'; allowed: prior, gru" in bad_mode.log()
    assert "/nonexistent/face.json" in missing.log() and "does not exist" in missing.log()


@covers("corrupt_jpeg")
def test_face_node_reads_jpeg_compressed_images_and_rejects_corrupt_ones():
    import cv2
    from sensor_msgs.msg import CompressedImage
    node = NodeProcess("face_embedding_node", "-p", "use_compressed:=true", "-p", "processing_rate:=20.0")
    h = Harness()
    try:
        out = h.collect(FaceEmbeddingArray, "faces/embeddings")
        pub = h.node.create_publisher(CompressedImage, "image/compressed", qos_profile_sensor_data)
        h.wait_for(lambda: pub.get_subscription_count() > 0, 60, "compressed subscription")
        ok, jpeg = cv2.imencode(".jpg", FRAME[:, :, ::-1])
        bad = CompressedImage(format="jpeg", data=b"\xff\xd8 truncated")
        bad.header.stamp = _stamp(5.0)
        empty = CompressedImage(format="jpeg")
        empty.header.stamp = _stamp(5.5)
        deadline = time.monotonic() + 30
        k = 0
        while not ("could not decode" in node.log() and "has no data" in node.log()) and time.monotonic() < deadline:
            pub.publish(empty if k % 2 else bad)   # empty: crashed cv2.imdecode (and the process) before
            k += 1
            time.sleep(0.3)
        good = CompressedImage(format="jpeg", data=jpeg.tobytes())
        good.header.stamp = _stamp(6.0)
        deadline = time.monotonic() + 30
        while not out and time.monotonic() < deadline:   # resend: best effort during discovery
            pub.publish(good)
            time.sleep(0.3)
    finally:
        h.close()
        node.stop()
    assert out and out[0].header.stamp == _stamp(6.0) and len(out[0].faces) == 1
    assert (out[0].image_width, out[0].image_height) == (640, 480)
    assert "could not decode" in node.log() and "has no data" in node.log()
