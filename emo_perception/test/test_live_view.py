"""The live view: a local page (127.0.0.1 by default) that shows live affect and event markers,
checked over HTTP and in headless Chromium with a screenshot."""
import json
import math
import shutil
import socket
import subprocess
import time
import urllib.request

import numpy as np
import pytest
from emo_perception_msgs.msg import Affect, AffectArray
from std_msgs.msg import String

from emo_perception import conversions
from node_harness import Harness, NodeProcess


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_live_view_serves_live_affect_and_events_on_localhost(tmp_path):
    port = _free_port()
    node = NodeProcess("live_view_node", "-p", f"port:={port}", "-p", "refresh_period:=0.1", "-r", "__ns:=/live")
    h = Harness()
    url = f"http://127.0.0.1:{port}/"
    try:
        pub = h.node.create_publisher(AffectArray, "/live/affect", 100)
        events = h.node.create_publisher(String, "/live/events", 10)
        h.wait_for(lambda: "live view on" in node.log() and pub.get_subscription_count() > 0
                   and events.get_subscription_count() > 0, 60, "live view")
        time.sleep(0.5)
        for k in range(150):                       # 6 s of data, two people, one event in the middle
            msg = AffectArray(mode="prior", model_id="prior")
            msg.header.stamp = conversions.seconds_to_stamp(100.0 + k * 0.04)
            msg.people = [Affect(track_id="f0", valence=0.6 * math.sin(k / 20), arousal=0.4, confidence=0.7,
                                 modalities=3),
                          Affect(track_id="f1", valence=-0.5, arousal=-0.3 + 0.005 * k, confidence=0.6, modalities=1)]
            pub.publish(msg)
            if k == 75:
                events.publish(String(data="condition:B"))
            time.sleep(0.005)
        h.wait_for(lambda: len(json.load(urllib.request.urlopen(url + "state", timeout=5))["people"].get(
            "f1", {}).get("t", [])) >= 140, 20, "the state to fill")
        state = json.load(urllib.request.urlopen(url + "state", timeout=5))
        chromium = shutil.which("chromium")
        shot = tmp_path / "live_view.png"
        if chromium:
            subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            "--virtual-time-budget=3000", f"--screenshot={shot}", "--window-size=1200,600", url],
                           capture_output=True, timeout=120, check=True)
    finally:
        h.close()
        node.stop()
    assert sorted(state["people"]) == ["f0", "f1"] and state["people"]["f0"]["voice"] and not state["people"]["f1"]["voice"]
    assert [e[1] for e in state["events"]] == ["condition:B"]
    assert state["people"]["f1"]["current"] == pytest.approx([-0.5, -0.3 + 0.005 * 149], abs=1e-3)
    assert "live view on http://127.0.0.1:" in node.log()
    if not chromium:
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it as root)")
    from PIL import Image
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    blue = (img[..., 2] > 150) & (img[..., 0] < 80)                  # f0's colour: lines, point and badge
    red = (img[..., 0] > 180) & (img[..., 1] < 80) & (img[..., 2] < 80)   # f1's colour
    assert blue.sum() > 500 and red.sum() > 500, "the page did not draw live data"
