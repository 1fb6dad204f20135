"""The fusion node as a process with a sound direction topic: the voice goes to the face the sound comes
from; a direction without a direction is reported in /diagnostics and the node goes on."""
import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from emo_perception_msgs.msg import Affect, AffectArray, AudioEmbedding, FaceEmbedding, FaceEmbeddingArray
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import RegionOfInterest

from emo_perception import conversions
from emo_perception.core.speaker import face_azimuth_deg
from node_harness import Harness, NodeProcess, latest_status

pytestmark = pytest.mark.ros

NS = "/doa"
LEFT, RIGHT = (200, 300, 100, 100), (980, 300, 100, 100)   # in a 1280x720 image


def _faces(t):
    msg = FaceEmbeddingArray(model_id="expression_teacher@test", image_width=1280, image_height=720)
    msg.header.stamp = conversions.seconds_to_stamp(t)
    for tid, (x, y, w, h) in (("left", LEFT), ("right", RIGHT)):
        msg.faces.append(FaceEmbedding(track_id=tid, box=RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h),
                                       detection_confidence=0.9, track_age=5, embedding=[0.0] * 8,
                                       expression_probabilities=[0, 0, 0, 0, 0, 0, 1.0], valence=0.0, arousal=0.0,
                                       mouth_activity=float("nan")))   # no lip information: only the direction
    return msg


def _pump(node, stop, azimuth):
    faces = node.create_publisher(FaceEmbeddingArray, f"{NS}/faces/embeddings", 10)
    audio = node.create_publisher(AudioEmbedding, f"{NS}/audio/embeddings", 10)
    direction = node.create_publisher(PoseStamped, f"{NS}/sound_localization", 10)
    t, k = 50.0, 0
    while not stop.is_set():
        if k % 2 == 0:
            faces.publish(_faces(t))
        e = AudioEmbedding(model_id="logmel_stats@1", voice_probability=0.95, loudness_dbfs=-20.0,
                           embedding=np.zeros(128, np.float32).tolist())
        e.header.stamp = conversions.seconds_to_stamp(t)
        audio.publish(e)
        p = PoseStamped()
        p.header.stamp = conversions.seconds_to_stamp(t)
        az = azimuth[0]
        p.pose.position.x, p.pose.position.y = (np.cos(np.radians(az)), np.sin(np.radians(az))) if az is not None \
            else (0.0, 0.0)
        direction.publish(p)
        t, k = t + 0.04, k + 1
        time.sleep(0.04)


def test_the_voice_goes_to_the_face_the_sound_comes_from():
    proc = NodeProcess("fusion_node", "-r", f"__ns:={NS}", "-p", f"sound_direction_topic:={NS}/sound_localization",
                       "-p", "diagnostics_period:=0.2")
    h, src = Harness(), Harness("doa_sources")
    stop, azimuth = threading.Event(), [face_azimuth_deg(LEFT, 1280, 70.0) + 3.0]
    try:
        out = h.collect(AffectArray, f"{NS}/affect")
        diags = h.collect(DiagnosticArray, "/diagnostics")
        h.wait_for(lambda: h.node.count_publishers(f"{NS}/affect") > 0, 60, "the fusion node")
        pump = threading.Thread(target=_pump, args=(src.node, stop, azimuth), daemon=True)
        pump.start()

        def voiced_by(n):
            return [{p.track_id for p in m.people if p.modalities & Affect.MODALITY_VOICE} for m in out[-n:]]

        h.wait_for(lambda: len(out) > 30 and voiced_by(10) == [{"left"}] * 10, 30, "the voice on the left face")
        azimuth[0] = face_azimuth_deg(RIGHT, 1280, 70.0) - 2.0
        h.wait_for(lambda: voiced_by(10) == [{"right"}] * 10, 30, "the voice moving to the right face")
        azimuth[0] = 0.0   # between them: nobody in view
        h.wait_for(lambda: voiced_by(5) == [{""}] * 5, 30, "a voice-only person")
        azimuth[0] = None  # a pose at the array's centre: no direction
        h.wait_for(lambda: latest_status(diags, "fusion_node")[2].get("directions_rejected", "0") != "0", 30,
                   "the rejected direction in /diagnostics")
        n = len(out)
        h.wait_for(lambda: len(out) > n + 10, 30, "affect after bad directions")
        assert proc.alive()
    finally:
        stop.set()
        src.close()
        h.close()
        proc.stop()
    assert "sound direction dropped: sound source position (0.0, 0.0) has no direction" in proc.log()
