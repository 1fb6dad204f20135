"""The three nodes as separate processes, driven by a synthetic camera (real faces) and a synthetic
microphone (real speech, published like audio_capture) over real Fast DDS."""
import math

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from emo_perception_msgs.msg import Affect, AffectArray, AudioEmbedding, FaceEmbeddingArray

from bad_input_cases import covers
from emo_perception.nodes.media_sources import CameraSource, MicrophoneSource
from media import demo_frame, speech_16k
from node_harness import Harness, NodeProcess, ok_or_busy

pytestmark = pytest.mark.ros

STEP = 0.04
HOLD = 0.2


def _t(stamp):
    return stamp.sec + stamp.nanosec * 1e-9


@pytest.fixture
def pipeline_processes():
    # (the processing-time thresholds are a robot's figures: the suite runs two test files at once on 2 cores)
    loose = ("-p", "processing_time_warn:=0.19", "-p", "processing_time_error:=0.5")
    procs = [NodeProcess("face_embedding_node", "-r", "image:=/cam/image", *loose),
             NodeProcess("audio_embedding_node", "-r", "audio_stamped:=/mic/audio_stamped",
                         "-r", "audio_info:=/mic/audio_info", *loose),
             NodeProcess("fusion_node", *loose)]
    yield procs
    for p in procs:
        p.stop()


@covers("good_input_timing")
def test_three_node_processes_turn_camera_and_microphone_into_affect(pipeline_processes):
    speech = speech_16k(20.0)
    h = Harness()
    try:
        affect = h.collect(AffectArray, "affect")
        diags = h.collect(DiagnosticArray, "/diagnostics")
        faces = h.collect(FaceEmbeddingArray, "faces/embeddings")
        audio = h.collect(AudioEmbedding, "audio/embeddings")
        h.wait_for(lambda: h.node.count_subscribers("/cam/image") > 0 and
                   h.node.count_subscribers("/mic/audio_stamped") > 0, 60, "nodes to subscribe")
        cam = CameraSource(h.node, [demo_frame()], rate=15.0, topic="/cam/image")
        mic = MicrophoneSource(h.node, speech, topic_prefix="/mic/")
        h.wait_for(lambda: len(affect) >= 150, 90, "150 AffectArray messages")
        cam.timer.cancel()
        mic.timer.cancel()
    finally:
        h.close()
    for p in pipeline_processes:
        assert p.alive(), p.log()[-3000:]

    stamps = np.array([_t(m.header.stamp) for m in affect])
    # gap-free 25 Hz once both streams run (before the first audio window, a camera stall under
    # load longer than the fusion's hold may leave a hole: those steps would rest on no data)
    first_voice = next(i for i, m in enumerate(affect) if any(p.modalities & Affect.MODALITY_VOICE for p in m.people))
    assert first_voice < 60
    assert np.allclose(np.diff(stamps[first_voice:]), STEP, atol=1e-6), "AffectArray is not on a gap-free 25 Hz grid"
    assert np.allclose(np.round(stamps / STEP) * STEP, stamps, atol=1e-6), "stamps are not 40 ms grid points"
    # every face message carries the stamp of a published image; every output traces to inputs
    image_stamps = set(cam.published)
    assert faces and all((f.header.stamp.sec, f.header.stamp.nanosec) in image_stamps for f in faces)
    face_t = np.array([_t(f.header.stamp) for f in faces])
    audio_t = np.array([_t(a.header.stamp) for a in audio])
    tracks = set()
    for m in affect[10:]:
        t = _t(m.header.stamp)
        assert m.mode == AffectArray.MODE_PRIOR
        for p in m.people:
            assert math.isfinite(p.valence) and math.isfinite(p.arousal)
            assert -1 <= p.valence <= 1 and -1 <= p.arousal <= 1 and 0 <= p.confidence <= 1
            if p.modalities & Affect.MODALITY_FACE:   # nearest within 40 ms, or held up to 0.2 s
                assert np.min(np.abs(face_t - t)) <= HOLD + 1e-6
                tracks.add(p.track_id)
            if p.modalities & Affect.MODALITY_VOICE:   # the same rule: the audio too is held up to 0.2 s
                # (the harness stamps its chunks by a timer, which under load leaves a gap now and then:
                # a clean clone's CI once saw an embedding 42 ms from its step)
                assert np.min(np.abs(audio_t - t)) <= HOLD + 1e-6
    assert len(tracks) == 1, f"one person in view but tracks {tracks}"
    with_face = [p for m in affect for p in m.people if p.modalities & Affect.MODALITY_FACE]
    assert len(with_face) > 50
    assert np.mean([p.valence for p in with_face]) > 0.1    # the astronaut smiles
    assert any(p.modalities & Affect.MODALITY_VOICE for m in affect for p in m.people)
    # audio embeddings come every hop on the audio clock
    assert np.median(np.diff(audio_t)) == pytest.approx(STEP, abs=1e-3)
    # good input at the default rate: every node OK, or busy on a loaded machine and saying so (the face
    # node's processing time is the work, not the wait for its next processing tick, reported apart)
    last = {s.name.split(": ")[-1]: s for m in diags for s in m.status}
    assert set(last) == {"face_embedding_node", "audio_embedding_node", "fusion_node"}
    for name, status in last.items():
        assert ok_or_busy(status.level, status.message), (name, status.message)
    face = {kv.key: kv.value for kv in last["face_embedding_node"].values}
    # (a bound, not a speed claim: bench/ times the face path; the suite runs two files at once)
    assert 0 < float(face["processing_time_p95_s"]) < 0.2 and "wait_for_tick_p95_s" in face
