"""Audio stamps as ROS 2 audio_capture makes them (GStreamer base time + buffer PTS: the capture time
of a chunk's first sample) put the audio on the same clock as the camera: a sound that starts with
a camera frame shows up in the audio embeddings at that frame's grid step, not a chunk earlier."""
import time

import numpy as np
import pytest
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from emo_perception_msgs.msg import AudioEmbedding
from rclpy.qos import QoSProfile, QoSReliabilityPolicy

from emo_perception import conversions
from emo_perception.nodes.node_support import INFO_QOS
from media import speech_16k
from node_harness import Harness, NodeProcess

pytestmark = pytest.mark.ros

CHUNK = 4096            # 256 ms chunks: a wrong stamp convention would misplace audio by 256 ms
ONSET = 503.0           # data time at which speech starts (a camera frame is stamped here too)


def test_audio_capture_stamps_put_a_sound_onset_on_the_camera_grid_step():
    node = NodeProcess("audio_embedding_node", "-p", "input_reliability:=reliable")   # default stamp_position
    h = Harness()
    try:
        out = h.collect(AudioEmbedding, "audio/embeddings")
        info = h.node.create_publisher(AudioInfo, "audio_info", INFO_QOS)
        pub = h.node.create_publisher(AudioDataStamped, "audio_stamped",
                                      QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE))
        h.wait_for(lambda: pub.get_subscription_count() > 0 and info.get_subscription_count() > 0, 60, "audio node")
        info.publish(AudioInfo(channels=1, sample_rate=16000, sample_format="S16LE", coding_format="wave"))
        time.sleep(0.5)
        t0 = ONSET - 2.0                                            # 2 s of near-silence, then speech
        signal = np.concatenate([np.full(32000, 1e-4, np.float32), speech_16k(2.0) * 4])
        for k in range(len(signal) // CHUNK):
            msg = AudioDataStamped()
            msg.header.stamp = conversions.seconds_to_stamp(t0 + k * CHUNK / 16000)   # first sample
            msg.audio.data = conversions.mono_to_audio_bytes(np.clip(signal[k * CHUNK:(k + 1) * CHUNK], -1, 1))
            pub.publish(msg)
            time.sleep(0.01)
        h.wait_for(lambda: out and conversions.stamp_to_seconds(out[-1].header.stamp) > ONSET + 1.0, 20, "embeddings")
    finally:
        h.close()
        node.stop()
    stamps = np.array([conversions.stamp_to_seconds(m.header.stamp) for m in out])
    loud = np.array([m.loudness_dbfs for m in out])
    first_loud = stamps[np.argmax(loud > -60.0)]
    # the first window that contains speech ends at the onset's grid step (one 40 ms hop of slack)
    assert ONSET <= first_loud <= ONSET + 0.04 + 1e-6, first_loud
