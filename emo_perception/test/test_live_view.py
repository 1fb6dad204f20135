"""The live view: a local page (127.0.0.1 by default) that shows live affect and event markers,
checked over HTTP and in headless Chromium: what it placed (value ticks, a time axis, event labels that
do not overlap, every event in the list) and a screenshot."""
import html
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

pytestmark = [pytest.mark.ros, pytest.mark.media]      # media: drives Chromium
EVENTS = {75: "condition:B", 77: "robot_tells_a_long_joke", 79: "participant:P03=f0", 81: "stimulus_2",
          146: "end_of_block"}     # four within 0.25 s, one at the right edge


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
        events.publish(String(data="warm_up"))          # before any affect: shown at the first step
        time.sleep(0.2)
        for k in range(150):                       # 6 s of data, two people, one event in the middle
            msg = AffectArray(mode="prior", model_id="prior")
            msg.header.stamp = conversions.seconds_to_stamp(100.0 + k * 0.04)
            msg.people = [Affect(track_id="f0", valence=0.6 * math.sin(k / 20), arousal=0.4, confidence=0.7,
                                 modalities=3),
                          Affect(track_id="f1", valence=-0.5, arousal=-0.3 + 0.005 * k, confidence=0.6, modalities=1)]
            pub.publish(msg)
            if k in EVENTS:
                events.publish(String(data=EVENTS[k]))
            time.sleep(0.005)
        h.wait_for(lambda: len(json.load(urllib.request.urlopen(url + "state", timeout=5))["people"].get(
            "f1", {}).get("t", [])) >= 140, 20, "the state to fill")
        state = json.load(urllib.request.urlopen(url + "state", timeout=5))
        chromium = shutil.which("chromium")
        shot = tmp_path / "live_view.png"
        if chromium:
            browse = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                      "--virtual-time-budget=3000", "--window-size=1260,760"]
            subprocess.run([*browse, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
            dom = subprocess.run([*browse, "--dump-dom", url], capture_output=True, text=True, timeout=120,
                                 check=True).stdout
    finally:
        h.close()
        node.stop()
    assert sorted(state["people"]) == ["f0", "f1"]
    assert state["people"]["f0"]["voice"] and not state["people"]["f1"]["voice"]
    assert [e[1] for e in state["events"]] == ["warm_up", *EVENTS.values()]
    assert state["people"]["f0"]["participant"] == "P03" and state["people"]["f1"]["confidence"] == 0.6
    assert state["people"]["f1"]["current"] == pytest.approx([-0.5, -0.3 + 0.005 * 149], abs=1e-3)
    assert "live view on http://127.0.0.1:" in node.log()
    if not chromium:
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it as root)")
    from PIL import Image
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    blue = (img[..., 2] > 150) & (img[..., 0] < 80)                  # f0's colour: lines, point and badge
    red = (img[..., 0] > 180) & (img[..., 1] < 80) & (img[..., 2] < 80)   # f1's colour
    assert blue.sum() > 500 and red.sum() > 500, "the page did not draw live data"
    layout = json.loads(html.unescape(dom.split('<pre id="layout" hidden="">')[1].split("</pre>")[0]))
    assert layout["events"] == ["warm_up", *EVENTS.values()] and layout["people"] == ["f0", "f1"]
    assert layout["xticks"] == ["0", "-10", "-20", "-30", "-40", "-50", "-60"]          # seconds before now
    assert layout["yticks"] == [[dim, v] for dim in ("valence", "arousal") for v in ("-1", "-0.5", "0", "+0.5", "+1")]
    labels = [b for b in layout["labels"] if not b.get("hidden")]
    assert len(labels) == len(layout["events"]), layout["labels"]         # each event's label is drawn ...
    for i, a in enumerate(labels):                                        # ... and none covers another
        for b in labels[i + 1:]:
            assert (a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"] or a["y"] + a["h"] <= b["y"]
                    or b["y"] + b["h"] <= a["y"]), (a, b)
        assert 0 <= a["x"] and a["x"] + a["w"] <= 860, a                 # inside the plot's canvas
    listed = dom.split('<ol id="events">')[1].split("</ol>")[0]
    assert listed.count("<li>") == len(layout["events"]) and "robot_tells_a_long_joke" in listed   # and listed
