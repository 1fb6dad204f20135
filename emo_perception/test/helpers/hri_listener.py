"""Collect hri_msgs/Expression from /humans/faces/<id>/expression (`hri_listener ID N TIMEOUT`); runs
with the test-only hri_msgs on its paths (test_hri.py)."""
import json
import sys
import time

import rclpy
from hri_msgs.msg import Expression


def main(face_id: str, count: int, timeout: float):
    rclpy.init()
    node = rclpy.create_node("hri_listener")
    got = []
    node.create_subscription(Expression, f"/humans/faces/{face_id}/expression", got.append, 100)
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    print(json.dumps([{"stamp": m.header.stamp.sec + m.header.stamp.nanosec * 1e-9, "expression": m.expression,
                       "valence": m.valence, "arousal": m.arousal, "confidence": m.confidence} for m in got]))
    rclpy.try_shutdown()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
