"""Lifecycle: with autostart off, a manager drives configure/activate/deactivate/cleanup over ROS."""
import time

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from node_harness import Harness, NodeProcess


def test_face_node_subscribes_only_while_active():
    node = NodeProcess("face_embedding_node", "-p", "autostart:=false")
    h = Harness()
    try:
        change = h.node.create_client(ChangeState, "/face_embedding_node/change_state")
        state = h.node.create_client(GetState, "/face_embedding_node/get_state")
        assert change.wait_for_service(timeout_sec=60) and state.wait_for_service(timeout_sec=10)
        pub = h.node.create_publisher(Image, "image", qos_profile_sensor_data)

        # A response can be lost while the service's reply path is still being discovered
        # (Fast DDS); get_state is idempotent, so it is simply asked again.
        def label():
            for _ in range(5):
                fut = state.call_async(GetState.Request())
                deadline = time.monotonic() + 3
                while not fut.done() and time.monotonic() < deadline:
                    time.sleep(0.05)
                if fut.done():
                    return fut.result().current_state.label
            raise AssertionError("get_state never answered")

        def transition(tid, expected):
            fut = change.call_async(ChangeState.Request(transition=Transition(id=tid)))
            deadline = time.monotonic() + 30
            while not fut.done() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert (fut.done() and fut.result().success) or label() == expected
            assert label() == expected

        assert label() == "unconfigured"
        transition(Transition.TRANSITION_CONFIGURE, "inactive")
        time.sleep(1.0)
        assert pub.get_subscription_count() == 0
        transition(Transition.TRANSITION_ACTIVATE, "active")
        h.wait_for(lambda: pub.get_subscription_count() == 1, 20, "subscription after activate")
        transition(Transition.TRANSITION_DEACTIVATE, "inactive")
        h.wait_for(lambda: pub.get_subscription_count() == 0, 20, "no subscription after deactivate")
        transition(Transition.TRANSITION_CLEANUP, "unconfigured")
    finally:
        h.close()
        node.stop()
