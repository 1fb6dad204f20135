"""Messages travel between processes over real Fast DDS (tier 2: rclpy, two processes)."""
import sys

import pytest

import ros_process

sys.path.insert(0, str(ros_process.HELPERS))
from message_samples import samples, to_plain  # noqa: E402

pytestmark = pytest.mark.ros


def test_every_message_type_round_trips_between_processes():
    sub = ros_process.start("pubsub_messages.py", "sub", "40")
    pub = ros_process.start("pubsub_messages.py", "pub", "40")
    received = ros_process.finish(sub, timeout=60)["received"]
    ros_process.finish(pub, timeout=60)
    expected = {topic: to_plain(msg) for topic, msg in samples().items()}
    assert sorted(received) == sorted(expected)
    for topic in expected:
        assert received[topic] == expected[topic], topic
    # The empty face array is a real message ("processed, no face"), distinct from no message.
    assert received["face_embedding_array_empty"]["faces"] == []


def test_640x480_rgb8_at_30hz_for_3s_arrive_without_loss_with_profile():
    sub = ros_process.start("image_stream.py", "sub", "90", "60")
    pub = ros_process.start("image_stream.py", "pub", "30", "3")
    pub_result = ros_process.finish(pub, timeout=60)
    result = ros_process.finish(sub, timeout=60)
    assert pub_result["published"] == 90
    assert result["corrupt"] == []
    assert result["received"] == 90, f"lost frames: {result['missing']}"
