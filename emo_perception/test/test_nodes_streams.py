"""Streams as robots deliver them (issue 20), through ROS against the face node's process: two cameras on one
topic, frames lost before the node, a model card that lies (and one of another crop size that does not)."""
import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from emo_perception_msgs.msg import FaceEmbeddingArray
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from bad_input_cases import covers
from emo_perception import conversions
from media import demo_frame
from model_cards import edited_teacher_card, stand_in_face_model
from node_harness import Harness, NodeProcess, latest_status

pytestmark = pytest.mark.ros

FRAME = demo_frame()
WARN = DiagnosticStatus.WARN


def _stamp(t):
    return Time(sec=int(t), nanosec=int(round((t % 1) * 1e9)))


def _image(rgb, t, frame_id="camera"):
    msg = conversions.rgb_to_image(rgb, "rgb8")
    msg.header.stamp, msg.header.frame_id = _stamp(t), frame_id
    return msg


def _send_until_processed(pub, out, msg, timeout=30):
    """Best effort: resend until the node's output for this frame (stamp and frame_id) is there."""
    deadline = time.monotonic() + timeout
    seen = lambda: any(m.header.stamp == msg.header.stamp and m.header.frame_id == msg.header.frame_id  # noqa: E731
                       for m in out)
    while not seen():
        assert time.monotonic() < deadline, f"no output for {msg.header.frame_id} at {msg.header.stamp}"
        pub.publish(msg)
        time.sleep(0.25)


def _wait_status(h, diags, predicate, timeout, what):
    h.wait_for(lambda: predicate(*latest_status(diags, "face_embedding_node")), timeout, what)
    return latest_status(diags, "face_embedding_node")


@covers("two_cameras")
def test_two_cameras_on_one_topic_are_tracked_apart_and_reported():
    node = NodeProcess("face_embedding_node", "-p", "processing_rate:=20.0", "-p", "diagnostics_period:=0.5")
    h = Harness()
    try:
        out = h.collect(FaceEmbeddingArray, "faces/embeddings")
        diags = h.collect(DiagnosticArray, "/diagnostics")
        pub = h.node.create_publisher(Image, "image", qos_profile_sensor_data)
        h.wait_for(lambda: pub.get_subscription_count() > 0, 60, "face node subscription")
        # the same scene from two cameras: the face 16 px apart (boxes overlap: one track would take
        # both), the right camera's stamps 5 ms behind the left one's (one stamp order would drop it)
        right = np.ascontiguousarray(np.roll(FRAME, 16, axis=1))
        for i in range(5):
            t = 100.0 + 0.1 * i
            _send_until_processed(pub, out, _image(FRAME, t, "cam_left"))
            _send_until_processed(pub, out, _image(right, t - 0.005, "cam_right"))
        level, message, values = _wait_status(h, diags, lambda lvl, msg, v: "cameras on one" in msg, 20,
                                              "the two-camera warning")
    finally:
        h.close()
        node.stop()
    ids = {cam: {f.track_id for m in out if m.header.frame_id == cam for f in m.faces}
           for cam in ("cam_left", "cam_right")}
    assert all(len(v) == 1 for v in ids.values()), ids      # one person per camera, one track each
    assert not ids["cam_left"] & ids["cam_right"], ids       # never one track over both cameras
    assert level == WARN and "2 cameras on one image topic (frame_ids cam_left, cam_right)" in message
    assert values["frame_ids"] == "cam_left, cam_right" and values["tracks"] == "2"
    log = node.log()
    assert log.count("images from another camera on this topic: frame_id 'cam_right'") == 1
    assert "older than the previous one" not in log


@covers("frames_lost_before_node")
def test_frames_lost_before_the_face_node_are_reported_against_the_rate_the_stamps_show():
    node = NodeProcess("face_embedding_node", "-p", "processing_rate:=10.0", "-p", "diagnostics_period:=0.5")
    h = Harness()
    try:
        diags = h.collect(DiagnosticArray, "/diagnostics")
        out = h.collect(FaceEmbeddingArray, "faces/embeddings")
        pub = h.node.create_publisher(Image, "image", qos_profile_sensor_data)
        h.wait_for(lambda: pub.get_subscription_count() > 0, 60, "face node subscription")
        msg = _image(FRAME, 50.0)
        _send_until_processed(pub, out, msg)
        rng = np.random.default_rng(1)
        start, k = time.monotonic(), 0

        def camera(seconds, keep):
            """A 30 Hz camera for `seconds` whose frames reach the node with probability `keep`."""
            nonlocal k
            end = k + int(seconds * 30)
            while k < end:
                k += 1
                time.sleep(max(0.0, start + k / 30 - time.monotonic()))
                if rng.random() < keep:
                    msg.header.stamp = _stamp(50.0 + k / 30)
                    pub.publish(msg)

        camera(5.5, 1.0)
        _, whole_message, whole = _wait_status(h, diags, lambda lvl, m, v: "missing_before_node_percent" in v, 10,
                                               "the arrival figures")
        camera(6.0, 0.4)                                   # 60 % lost on the way
        level, message, values = _wait_status(h, diags, lambda lvl, m, v: "never reach this node" in m, 10,
                                              "the missing-frames warning")
    finally:
        h.close()
        node.stop()
    # every frame sent: below the warning; on a loaded machine frames replace each other in the node's own
    # 2-frame queue while it works (a clean clone saw 27.5 %), and then the node must say that is the cause
    assert float(whole["missing_before_node_percent"]) < 25 or "(they would have been skipped)" in whole_message, \
        (whole_message, whole)
    assert level == WARN
    assert 40 <= float(values["missing_before_node_percent"]) <= 80, values
    assert 27 <= float(values["stamped_rate_hz"]) <= 33, values       # the camera's rate, by its stamps
    assert float(values["input_rate_hz"]) < 20, values
    assert "of the frames of 'camera' never reach this node: its stamps show" in message


@covers("lying_model_card")
def test_a_lying_model_card_fails_configure_and_a_card_of_another_crop_size_is_followed(tmp_path):
    (tmp_path / "lying").mkdir()
    lying = edited_teacher_card(tmp_path / "lying", lambda c: c["inputs"][0].update(shape=["batch", 1, 48, 48]))
    refused = NodeProcess("face_embedding_node", "-p", f"face_model:={lying}")
    stand_in = stand_in_face_model(tmp_path, 48)
    node = NodeProcess("face_embedding_node", "-p", f"face_model:={stand_in}", "-p", "processing_rate:=20.0")
    h = Harness()
    try:
        out = h.collect(FaceEmbeddingArray, "faces/embeddings")
        pub = h.node.create_publisher(Image, "image", qos_profile_sensor_data)
        h.wait_for(lambda: pub.get_subscription_count() > 0, 60, "face node subscription")
        _send_until_processed(pub, out, _image(FRAME, 10.0))
        assert refused.wait_exit(60) == 1
    finally:
        h.close()
        node.stop()
        refused.stop()
    faces = [m for m in out if m.header.stamp == _stamp(10.0)][0]
    assert faces.model_id.startswith("stand_in_face_48@") and len(faces.faces) == 1    # 48x48 crops went in
    lines = [line for line in refused.log().splitlines() if "does not describe" in line]
    assert len(lines) == 1, refused.log()
    assert "input 'face' has shape ['batch', 1, 64, 64] in the model, ['batch', 1, 48, 48] in the card" in lines[0]
