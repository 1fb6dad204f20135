"""Publish faces the way ROS4HRI's hri_face_detect does (`hri_faces SECONDS`): /humans/faces/tracked
(hri_msgs/IdsList) and /humans/faces/<id>/aligned (sensor_msgs/Image) with the source image's header;
two faces, ids 'abcde' (the astronaut) and 'fghij' (an LFW face). Runs with the test-only hri_msgs."""
import json
import sys
import time

import cv2
import numpy as np
import rclpy
from hri_msgs.msg import IdsList
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import Image
from skimage import data

from emo_perception import conversions


def main(seconds: float):
    rclpy.init()
    node = rclpy.create_node("hri_face_detect_stand_in")
    qos = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
    tracked = node.create_publisher(IdsList, "/humans/faces/tracked", qos)
    faces = {"abcde": np.ascontiguousarray(cv2.resize(data.astronaut()[60:200, 160:300], (128, 128))),
             "fghij": np.repeat(cv2.resize((data.lfw_subset()[3] * 255).astype(np.uint8), (128, 128))[:, :, None],
                                3, 2)}
    aligned = {fid: node.create_publisher(Image, f"/humans/faces/{fid}/aligned", qos) for fid in faces}
    deadline = time.monotonic() + 60
    while tracked.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    # the node subscribes to a face's crop once it sees its id in a tracked list: announce them first
    warm = IdsList(ids=list(faces))
    warm.header.stamp = conversions.seconds_to_stamp(299.0)
    while any(p.get_subscription_count() == 0 for p in aligned.values()) and time.monotonic() < deadline:
        tracked.publish(warm)
        time.sleep(0.2)
    time.sleep(0.5)
    sent, t0 = 0, 300.0
    for k in range(int(seconds * 10)):
        stamp = conversions.seconds_to_stamp(t0 + k * 0.1)
        for fid, rgb in faces.items():
            msg = conversions.rgb_to_image(rgb)
            msg.header.stamp, msg.header.frame_id = stamp, "camera"
            aligned[fid].publish(msg)
        ids = IdsList(ids=list(faces))
        ids.header.stamp, ids.header.frame_id = stamp, "camera"
        tracked.publish(ids)
        sent += 1
        time.sleep(0.1)
    print(json.dumps({"sent": sent}))
    rclpy.try_shutdown()


if __name__ == "__main__":
    main(float(sys.argv[1]))
