"""Other ways the nodes run: all three in one process, on simulated time (bag replay), with the
debug image."""
import time

import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image

from emo_perception import conversions
from emo_perception_msgs.msg import FaceEmbeddingArray
from media import demo_frame
from node_harness import Harness, NodeProcess

pytestmark = pytest.mark.ros

FRAME = demo_frame()


def _image(sec):
    msg = conversions.rgb_to_image(FRAME)
    msg.header.stamp.sec = sec
    msg.header.frame_id = "cam"
    return msg


def test_all_in_one_process_runs_the_three_nodes_from_the_shared_yaml():
    proc = NodeProcess("all_in_one")
    h = Harness()
    try:
        h.wait_for(lambda: h.node.count_subscribers("image") > 0 and h.node.count_subscribers("audio_stamped") > 0
                   and h.node.count_subscribers("faces/embeddings") > 0 and h.node.count_publishers("affect") > 0,
                   60, "the three nodes' topics")
        # node names reach the graph on their own discovery message, which can trail the topics' (a CI run
        # saw the topics of all three and the names of two): waited for, not sampled once
        three = {"face_embedding_node", "audio_embedding_node", "fusion_node"}
        h.wait_for(lambda: three <= set(h.node.get_node_names()), 20, f"the node names {sorted(three)}")
    finally:
        h.close()
        proc.stop()


def test_face_node_on_simulated_time_processes_as_the_clock_advances_and_draws_debug_images():
    proc = NodeProcess("face_embedding_node", "-p", "use_sim_time:=true", "-p", "processing_rate:=10.0")
    h = Harness()
    try:
        out = h.collect(FaceEmbeddingArray, "faces/embeddings")
        debug = h.collect(Image, "faces/debug_image", 1)
        clock = h.node.create_publisher(Clock, "/clock", 10)
        pub = h.node.create_publisher(Image, "image", qos_profile_sensor_data)
        h.wait_for(lambda: pub.get_subscription_count() > 0 and clock.get_subscription_count() > 0, 60, "subscriptions")
        time.sleep(1.0)
        pub.publish(_image(500))
        time.sleep(1.0)
        assert out == [], "processed without the simulated clock advancing"
        for k in range(1, 60):      # a bag player publishing /clock
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = 500 + k // 10, (k % 10) * 100_000_000
            clock.publish(msg)
            if k % 5 == 0:
                pub.publish(_image(500 + k))
            time.sleep(0.05)
            if out and debug:
                break
        h.wait_for(lambda: bool(out) and bool(debug), 20, "faces and a debug image on simulated time")
    finally:
        h.close()
        proc.stop()
    assert out[0].header.stamp.sec >= 500 and len(out[0].faces) == 1
    drawn = conversions.image_to_rgb(debug[0])
    assert drawn.shape == FRAME.shape and debug[0].header.frame_id == "cam"
    assert np.any(np.all(drawn == (0, 255, 0), axis=2))   # the green box and label were drawn
