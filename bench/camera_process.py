"""A camera driver for the benches, in a process of its own as on a robot: publishes one frame (real faces,
bench_end_to_end.camera_frame) at 30 Hz on `image` for `--seconds` once a subscriber matched, stamped with
the node clock at publication. Prints one JSON line at the first frame: its wall time and stamp (the bench
starts the microphone then).

    python bench/camera_process.py --size 1280x720 --faces 2 --encoding bgr8 --seconds 10
(ROS_DOMAIN_ID from the environment.)
"""
import argparse
import json
import time

import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from emo_perception import conversions

from bench_end_to_end import camera_frame

PERIOD = 1 / 30


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--faces", type=int, default=2)
    ap.add_argument("--encoding", default="bgr8")
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    rclpy.init()
    node = rclpy.create_node("bench_camera")
    pub = node.create_publisher(Image, "image", qos_profile_sensor_data)
    img = conversions.rgb_to_image(camera_frame(a.size, a.faces), a.encoding)
    img.header.frame_id = "camera"
    deadline = time.monotonic() + 60
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    first = None
    stop = time.monotonic() + a.seconds
    t_next = time.monotonic()
    while time.monotonic() < stop:
        img.header.stamp = node.get_clock().now().to_msg()
        pub.publish(img)
        if first is None:
            first = (time.time(), img.header.stamp.sec + img.header.stamp.nanosec * 1e-9)
            print(json.dumps({"first_frame_wall": first[0], "first_frame_stamp": first[1]}), flush=True)
        t_next += PERIOD
        time.sleep(max(0.0, t_next - time.monotonic()))
    if first is None:
        print(json.dumps({}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main()
