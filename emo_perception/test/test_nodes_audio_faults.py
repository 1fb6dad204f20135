"""Audio faults through ROS, each reported in the log and /diagnostics with its likely cause, and
recovered from: no AudioInfo, empty chunks, stamps that jump, a wrong AudioInfo, a rate that changes
mid-stream. One audio node process; the phases follow each other in data time."""
import time

import pytest
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from emo_perception_msgs.msg import AudioEmbedding
from rclpy.qos import QoSProfile, QoSReliabilityPolicy

from bad_input_cases import covers
from emo_perception import conversions
from emo_perception.nodes.node_support import INFO_QOS
from media import speech_16k
from node_harness import Harness, NodeProcess, latest_status

pytestmark = pytest.mark.ros

RELIABLE = QoSProfile(depth=200, reliability=QoSReliabilityPolicy.RELIABLE)
CHUNK = 1024
INFO_16K = AudioInfo(channels=1, sample_rate=16000, sample_format="S16LE", coding_format="wave")


def _status(diags):
    return latest_status(diags, "audio_embedding_node")


@covers("no_info")
@covers("empty_chunks")
@covers("audio_jump")
@covers("rate_change")
@covers("info_mismatch")
def test_audio_node_reports_and_recovers_from_audio_faults():
    node = NodeProcess("audio_embedding_node", "-p", "input_reliability:=reliable", "-p", "diagnostics_period:=0.3")
    h = Harness()
    speech = speech_16k(30.0)
    pos = [0]

    def send(t0, seconds, keep=CHUNK, empty_every=0, pace=0.004):
        """Chunks of CHUNK samples stamped from t0 at 16 kHz; `keep` samples of each are sent."""
        n = int(seconds * 16000 / CHUNK)
        for k in range(n):
            x = speech[pos[0]:pos[0] + CHUNK][:keep]
            pos[0] = (pos[0] + CHUNK) % (len(speech) - CHUNK)
            msg = AudioDataStamped()
            msg.header.stamp = conversions.seconds_to_stamp(t0 + k * CHUNK / 16000)
            msg.audio.data = conversions.mono_to_audio_bytes(x)
            pub.publish(msg)
            if empty_every and k % empty_every == 0:
                empty = AudioDataStamped()
                empty.header.stamp = conversions.seconds_to_stamp(t0 + k * CHUNK / 16000 + 0.01)
                pub.publish(empty)
            time.sleep(pace)

    def wait_status(level, text, timeout=15):
        h.wait_for(lambda: _status(diags)[0] == level and text in _status(diags)[1], timeout,
                   f"diagnostics {level} '{text}' (last: {_status(diags)[:2]})")

    try:
        out = h.collect(AudioEmbedding, "audio/embeddings")
        diags = h.collect(DiagnosticArray, "/diagnostics")
        info = h.node.create_publisher(AudioInfo, "audio_info", INFO_QOS)
        pub = h.node.create_publisher(AudioDataStamped, "audio_stamped", RELIABLE)
        h.wait_for(lambda: pub.get_subscription_count() > 0 and info.get_subscription_count() > 0, 60, "audio node")
        time.sleep(0.5)

        send(100.0, 2.0)                                   # 1. audio, but no AudioInfo for 2 s (1 s is start-up)
        wait_status(DiagnosticStatus.ERROR, "no usable audio_info")
        assert not out

        info.publish(INFO_16K)                             # 2. good audio with empty chunks mixed in
        time.sleep(0.3)
        send(110.0, 3.0, empty_every=2)
        h.wait_for(lambda: len(out) >= 45, 15, "embeddings despite empty chunks")
        n_empty_phase = len(out)
        wait_status(DiagnosticStatus.WARN, "without samples")

        send(110.0 + 86400, 0.5)                           # 3. stamped a day ahead, then back
        send(114.0, 3.0)
        h.wait_for(lambda: any(abs(conversions.stamp_to_seconds(m.header.stamp) - 116.0) < 0.05 for m in out), 15,
                   "embeddings after the jumps")
        assert "audio stamps jumped forward" in node.log() and "audio stamps jumped back" in node.log()

        send(118.0, 5.0, keep=CHUNK // 3)                  # 4. the data rate drops to a third mid-stream
        wait_status(DiagnosticStatus.ERROR, "declares 16000 Hz")

        info.publish(AudioInfo(channels=2, sample_rate=48000, sample_format="S16LE", coding_format="wave"))
        time.sleep(0.3)                                    # 5. AudioInfo says 48 kHz stereo, data is 16 kHz mono
        send(124.0, 5.0)
        wait_status(DiagnosticStatus.ERROR, "declares 48000 Hz")
        assert node.alive()
    finally:
        h.close()
        node.stop()
    # 3 s at 25 Hz minus the first window: empty chunks cost nothing (before, they cut output ~50x)
    assert n_empty_phase >= 45
    log = node.log()
    assert "no audio_info" in log and log.count("declares 48000 Hz") == 1 and "Traceback" not in log
