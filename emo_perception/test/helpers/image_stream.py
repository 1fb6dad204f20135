"""Stream 640x480 rgb8 images (`pub RATE SECONDS`) or count them (`sub N TIMEOUT`), as processes.

Sensor-data QoS (best effort) as the camera drivers use: delivery relies on the Fast DDS profile.
"""
import json
import sys
import time

import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image


def publish(rate: float, seconds: float):
    node = rclpy.create_node("image_stream_pub")
    pub = node.create_publisher(Image, "stream/image", qos_profile_sensor_data)
    deadline = time.monotonic() + 30.0
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # both ends of the SHM transport have to be set up, not just matched
    pixels = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    n = int(rate * seconds)
    t0 = time.monotonic()
    for i in range(n):
        msg = Image(height=480, width=640, encoding="rgb8", step=640 * 3)
        msg.header.frame_id = str(i)
        pixels[0, 0, 0] = i % 256
        msg.data = pixels.tobytes()
        pub.publish(msg)
        time.sleep(max(0.0, t0 + (i + 1) / rate - time.monotonic()))
    time.sleep(0.5)
    print(json.dumps({"published": n, "seconds": time.monotonic() - t0}))


def subscribe(expected: int, timeout: float):
    node = rclpy.create_node("image_stream_sub")
    seen, bad = set(), []

    def on_image(msg):
        if len(msg.data) != 640 * 480 * 3 or msg.data[0] != int(msg.header.frame_id) % 256:
            bad.append(msg.header.frame_id)
        seen.add(int(msg.header.frame_id))

    node.create_subscription(Image, "stream/image", on_image, qos_profile_sensor_data)
    deadline = time.monotonic() + timeout
    while len(seen) < expected and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    print(json.dumps({"received": len(seen), "corrupt": bad, "missing": sorted(set(range(expected)) - seen)[:20]}))


if __name__ == "__main__":
    rclpy.init()
    if sys.argv[1] == "pub":
        publish(float(sys.argv[2]), float(sys.argv[3]))
    else:
        subscribe(int(sys.argv[2]), float(sys.argv[3]))
    rclpy.try_shutdown()
