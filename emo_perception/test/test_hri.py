"""ROS4HRI output through ROS: with publish_hri the fusion node publishes hri_msgs/Expression on
/humans/faces/<id>/expression, the header and valence/arousal of its AffectArray and the face's
expression. Uses the test-only hri_msgs (built by setup.sh into build/test_prefix, not the venv)."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from emo_perception_msgs.msg import AffectArray

from emo_perception import conversions
from emo_perception.nodes.media_sources import CameraSource, MicrophoneSource
from media import demo_frame, speech_16k
from node_harness import Harness, NodeProcess

pytestmark = pytest.mark.ros

PREFIX = pathlib.Path(__file__).resolve().parents[2] / "build" / "test_prefix"
SITE = PREFIX / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def _hri_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SITE), env.get("PYTHONPATH")]))
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(PREFIX / "lib"), env.get("LD_LIBRARY_PATH")]))
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(filter(None, [str(PREFIX), env.get("AMENT_PREFIX_PATH")]))
    return env


def test_fusion_publishes_ros4hri_expressions_per_face():
    if not (SITE / "hri_msgs").is_dir():
        pytest.skip("the test-only hri_msgs is not built (scripts/setup.sh builds it)")
    env = _hri_env()
    nodes = NodeProcess("all_in_one", "-r", "__ns:=/hri", "-p", "publish_hri:=true", env=env)
    listener = subprocess.Popen([sys.executable, str(pathlib.Path(__file__).parent / "helpers" / "hri_listener.py"),
                                 "f0", "40", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    h = Harness()
    try:
        affect = h.collect(AffectArray, "/hri/affect", 1000)
        h.wait_for(lambda: h.node.count_subscribers("/hri/image") > 0 and "fusion mode" in nodes.log(), 60, "nodes")
        cam = CameraSource(h.node, [demo_frame()], rate=10.0, topic="/hri/image")
        mic = MicrophoneSource(h.node, speech_16k(20.0), topic_prefix="/hri/")
        out, err = listener.communicate(timeout=90)
        cam.timer.cancel()
        mic.timer.cancel()
    finally:
        h.close()
        nodes.stop()
        if listener.poll() is None:
            listener.kill()
    assert listener.returncode == 0, err[-2000:]
    expressions = json.loads(out.strip().splitlines()[-1])
    assert len(expressions) >= 40, nodes.log()[-2000:]
    by_stamp = {round(conversions.stamp_to_seconds(m.header.stamp), 6): p for m in affect for p in m.people
                if p.track_id == "f0"}
    matched = [(e, by_stamp[round(e["stamp"], 6)]) for e in expressions if round(e["stamp"], 6) in by_stamp]
    assert len(matched) > 30
    for e, p in matched:            # the same estimate, under the same header, as the AffectArray
        assert e["valence"] == pytest.approx(p.valence, abs=1e-6) and e["arousal"] == pytest.approx(p.arousal, abs=1e-6)
        assert e["confidence"] == pytest.approx(p.confidence, abs=1e-6)
    assert {e["expression"] for e in expressions} <= set(conversions.HRI_EXPRESSIONS.values())
    assert max(set(e["expression"] for e in expressions), key=[e["expression"] for e in expressions].count) == "happy"


def test_faces_from_ros4hri_replace_our_detector():
    if not (SITE / "hri_msgs").is_dir():
        pytest.skip("the test-only hri_msgs is not built (scripts/setup.sh builds it)")
    from emo_perception_msgs.msg import FaceEmbeddingArray
    env = _hri_env()
    node = NodeProcess("face_embedding_node", "-p", "face_source:=hri", env=env)
    source = subprocess.Popen([sys.executable, str(pathlib.Path(__file__).parent / "helpers" / "hri_faces.py"), "5"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    h = Harness()
    try:
        out = h.collect(FaceEmbeddingArray, "faces/embeddings", 100)
        stdout, err = source.communicate(timeout=90)
        h.wait_for(lambda: sum(len(m.faces) == 2 for m in out) >= 10, 30,
                   f"both ROS4HRI faces encoded: {[len(m.faces) for m in out]} {stdout} {node.log()[-800:]}")
    finally:
        h.close()
        node.stop()
        if source.poll() is None:
            source.kill()
    assert source.returncode == 0, err[-2000:]
    full = [m for m in out if len(m.faces) == 2]
    assert all({f.track_id for f in m.faces} == {"abcde", "fghij"} for m in full)   # their ids are the track ids
    astronaut = [f for m in full for f in m.faces if f.track_id == "abcde"]
    assert np.mean([f.valence for f in astronaut]) > 0.1                          # the smile is read
    assert all(m.image_width == 0 for m in full) and "Traceback" not in node.log()
