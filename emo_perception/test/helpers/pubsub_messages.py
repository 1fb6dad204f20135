"""Publish (`pub`) or receive (`sub`) one sample of every message type; run as its own process.

`sub` prints {"received": {topic: plain_message}} as JSON. `pub` keeps publishing until every
subscriber has matched and the timeout passes, so late discovery loses nothing (reliable QoS).
"""
import json
import sys
import time

import rclpy
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy

from message_samples import samples, to_plain

QOS = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE,
                 durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)


def main(mode: str, timeout: float):
    rclpy.init()
    node = rclpy.create_node(f"roundtrip_{mode}")
    msgs = samples()
    received = {}
    if mode == "pub":
        pubs = {t: node.create_publisher(type(m), f"rt/{t}", QOS) for t, m in msgs.items()}
        for topic, msg in msgs.items():
            pubs[topic].publish(msg)  # transient-local: late subscribers still get it
        matched = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(matched) < len(pubs):
            matched.update(t for t, p in pubs.items() if p.get_subscription_count() > 0)
            time.sleep(0.01)
        time.sleep(1.0)  # let reliable delivery finish before the writer goes away
        print(json.dumps({"published": sorted(msgs)}))
    else:
        for topic, msg in msgs.items():
            node.create_subscription(type(msg), f"rt/{topic}",
                                     lambda m, t=topic: received.setdefault(t, to_plain(m)), QOS)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(received) < len(msgs):
            rclpy.spin_once(node, timeout_sec=0.05)
        time.sleep(1.0)  # stay matched a moment so the publisher sees every subscription
        print(json.dumps({"received": received}))
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
