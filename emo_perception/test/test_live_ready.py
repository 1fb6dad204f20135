"""emo_eval --live waits for the nodes by asking their lifecycle state (GetState), not by reading
their logs: an in-process lifecycle node is not ready until it is active, and the error names each
node that is not, with the state it last reported, and the node log."""
import os

import pytest
from rclpy.lifecycle import Node as LifecycleNode

from emo_perception.eval.live import wait_until_active
from node_harness import Harness

pytestmark = pytest.mark.ros


# A reply to a client that the server has not yet discovered is dropped with this RuntimeWarning
# (wait_until_active asks again); pytest's `error` filter would raise it in the spin thread instead.
@pytest.mark.filterwarnings("ignore:failed to send response:RuntimeWarning")
def test_nodes_are_ready_when_their_lifecycle_state_is_active():
    h = Harness("live_ready_probe")
    name = f"ready_probe_{os.getpid()}"        # its own name: nodes that ended can linger in the graph
    probe = LifecycleNode(name, context=h.context)
    h.executor.add_node(probe)
    try:
        with pytest.raises(RuntimeError, match=rf"{name} \(last state: unconfigured\).*"
                                               rf"nobody_{os.getpid()} \(last state: no get_state service\)"
                                               r".*node log: /tmp/nodes\.log"):
            wait_until_active(h.node, [name, f"nobody_{os.getpid()}"], timeout=3.0, log_path="/tmp/nodes.log")
        probe.trigger_configure()
        with pytest.raises(RuntimeError, match=rf"{name} \(last state: inactive\); are the nodes running\?"):
            wait_until_active(h.node, [name], timeout=3.0)
        probe.trigger_activate()
        wait_until_active(h.node, [name], timeout=10.0)     # returns: active
        assert not [c for c in h.node.clients if c.service_name.endswith("/get_state")]   # its clients are gone
    finally:
        h.executor.remove_node(probe)
        probe.destroy_node()
        h.close()
