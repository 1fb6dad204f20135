"""Replaying a bag raises no alarms: simulated time starting at the bag's first /clock is a time base,
not a jump, and audio in the first second before its AudioInfo is the expected start-up. Real jumps
and a missing AudioInfo keep their warnings (the latter: test_nodes_audio_faults.py)."""
import re
import time

import pytest
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from emo_perception_msgs.msg import AudioEmbedding
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from rosgraph_msgs.msg import Clock

from emo_perception import conversions
from emo_perception.nodes.node_support import INFO_QOS
from media import speech_16k
from node_harness import Harness, NodeProcess

pytestmark = pytest.mark.ros

RELIABLE = QoSProfile(depth=200, reliability=QoSReliabilityPolicy.RELIABLE)
CHUNK = 1024


def test_a_replay_start_is_quiet_and_a_real_jump_is_not():
    node = NodeProcess("audio_embedding_node", "-p", "use_sim_time:=true", "-p", "input_reliability:=reliable")
    h = Harness()
    speech = speech_16k(4.0)
    try:
        out = h.collect(AudioEmbedding, "audio/embeddings")
        clock = h.node.create_publisher(Clock, "/clock", 10)
        info = h.node.create_publisher(AudioInfo, "audio_info", INFO_QOS)
        pub = h.node.create_publisher(AudioDataStamped, "audio_stamped", RELIABLE)
        h.wait_for(lambda: pub.get_subscription_count() > 0 and clock.get_subscription_count() > 0, 60, "audio node")

        def tick(t):
            clock.publish(Clock(clock=conversions.seconds_to_stamp(t)))

        def send(t0, k0, k1):
            for k in range(k0, k1):
                tick(t0 + k * CHUNK / 16000)
                msg = AudioDataStamped()
                msg.header.stamp = conversions.seconds_to_stamp(t0 + k * CHUNK / 16000)
                msg.audio.data = conversions.mono_to_audio_bytes(speech[k * CHUNK:(k + 1) * CHUNK])
                pub.publish(msg)
                time.sleep(0.004)

        send(1000.0, 0, 8)                 # a bag's first 0.5 s: audio before its latched AudioInfo
        info.publish(AudioInfo(channels=1, sample_rate=16000, sample_format="S16LE", coding_format="wave"))
        time.sleep(0.3)
        send(1000.0, 8, 48)
        h.wait_for(lambda: len(out) >= 20, 15, "embeddings")
        quiet = node.log()
        tick(5000.0)                       # a real clock step
        h.wait_for(lambda: "ROS time jumped forward" in node.log(), 10, "the jump warning")
    finally:
        h.close()
        node.stop()
    # the bag's time (the first /clock messages can go before the node's subscription has matched: the
    # publisher sees it first, so under load the start logged may be a few ticks later)
    start = re.search(r"ROS time starts at ([0-9.]+) s", quiet)
    assert start and 1000.0 <= float(start.group(1)) < 1001.0, quiet
    assert "jumped" not in quiet and "no audio_info" not in quiet and "WARN" not in quiet \
        and "ERROR" not in quiet, quiet
