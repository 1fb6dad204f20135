"""Stream alignment, streaming fusion GRU, prior mode and metrics (tier 1, no ROS)."""
import numpy as np
import pytest
import torch

from emo_perception.core.alignment import DUPLICATE, LATE, StreamAligner
from emo_perception.core.fusion_stream import FusionStreams, model_step
from emo_perception.core.metrics import ccc, pcc, rmse, sagr
from emo_perception.core.prior import PriorFusion
from emo_perception.nets.fusion_gru import FusionGRU, FusionGRUConfig
from emo_perception.nets.losses import ccc_loss


def _torch_step(model):
    """The GRU behind the backends' run() interface, stepped by core's one adapter (model_step)."""
    class Run:
        def run(self, inputs):
            with torch.no_grad():
                va, conf, st = model(*(torch.from_numpy(inputs[k]) for k in ("face", "audio", "mask", "state")))
            return {"valence_arousal": va.numpy(), "confidence": conf.numpy(), "state_out": st.numpy()}
    return model_step(Run())


def test_streaming_gru_equals_the_whole_sequence_at_once():
    torch.manual_seed(0)
    model = FusionGRU(FusionGRUConfig()).eval()
    rng = np.random.default_rng(0)
    T = 60
    face = rng.normal(size=(1, T, 256)).astype(np.float32)
    audio = rng.normal(size=(1, T, 128)).astype(np.float32)
    mask = (rng.random((1, T, 2)) > 0.2).astype(np.float32)
    mask[0, :, 0] = 1.0   # the streamed track is seen at every step
    with torch.no_grad():
        va_b, conf_b, _ = model(torch.from_numpy(face * mask[..., :1]), torch.from_numpy(audio * mask[..., 1:]),
                                torch.from_numpy(mask), model.initial_state(1))
    streams = FusionStreams(_torch_step(model), (2, 128), 256, 128)
    streamed = []
    for t in range(T):
        a = audio[0, t] if mask[0, t, 1] else None
        (out,) = streams.step(t * 0.04, {"f1": face[0, t]}, a)
        streamed.append([out.valence, out.arousal, out.confidence])
    batch = np.concatenate([va_b.numpy()[0], conf_b.numpy()[0]], axis=1)
    assert np.abs(np.array(streamed) - batch).max() <= 1e-5


def test_fusion_streams_keep_one_state_per_track_and_reset_after_a_gap():
    torch.manual_seed(0)
    model = FusionGRU(FusionGRUConfig()).eval()
    streams = FusionStreams(_torch_step(model), (2, 128), 256, 128, reset_after_s=0.5)
    f = np.ones(256, np.float32)
    first = streams.step(0.0, {"a": f}, None)[0]
    streams.step(0.04, {"a": f, "b": f}, None)
    # b's first step equals a's first step: b did not inherit a's state
    b_first = streams.step(0.08, {"b": f * 0}, None)
    assert b_first[0].track_id == "b"
    again = streams.step(1.0, {"a": f}, None)[0]      # 0.96 s after a was last seen: state reset
    assert again.valence == pytest.approx(first.valence, abs=1e-6)
    voice_only = streams.step(1.04, {}, np.ones(128, np.float32))
    assert [o.track_id for o in voice_only] == [""]
    assert streams.step(1.08, {}, None) == []
    with pytest.raises(ValueError, match="expected \\(256,\\)"):
        streams.step(1.12, {"a": np.ones(3, np.float32)}, None)


def _feed(aligner, events):
    steps = []
    for stream, stamp in events:
        aligner.add(stream, stamp, (stream, stamp))
        steps += aligner.ready()
    return steps + aligner.ready(flush=True)


def test_aligner_puts_samples_on_the_40ms_grid_with_masks_and_is_deterministic():
    face = [("face", 10.0 + k / 30) for k in range(30)]          # 30 fps camera
    audio = [("audio", 10.0 + 0.04 * k + 0.003) for k in range(25)]  # 25 Hz audio, 3 ms offset
    events = sorted(face + audio, key=lambda e: e[1])
    steps = _feed(StreamAligner(), events)
    times = [s.time for s in steps]
    assert times[0] == pytest.approx(10.0) and np.allclose(np.diff(times), 0.04)
    for s in steps:
        assert s.face is None or abs(s.face[1] - s.time) <= 0.04 + 1e-9
        assert s.audio is None or abs(s.audio[1] - s.time) <= 0.04 + 1e-9
    # a different arrival order (audio late by a few messages) gives the same steps
    shuffled = sorted(face + audio, key=lambda e: e[1] + (0.1 if e[0] == "audio" else 0))
    again = _feed(StreamAligner(), shuffled)
    assert [(s.time, s.face, s.audio) for s in again] == [(s.time, s.face, s.audio) for s in steps]
    # knowing audio comes every 40 ms lets steps close earlier, with the same result
    eager = _feed(StreamAligner(min_interval={"audio": 0.03}), shuffled)
    assert [(s.time, s.face, s.audio) for s in eager] == [(s.time, s.face, s.audio) for s in steps]


def test_aligner_marks_a_stream_that_is_down_as_missing_and_drops_late_samples():
    al = StreamAligner(max_wait=0.2)
    steps = []
    for k in range(50):   # only the camera runs for 2 s
        al.add("face", 3.0 + k / 25, k)
        steps += al.ready()
    assert len(steps) > 30 and all(s.audio is None and s.face is not None for s in steps)
    assert al.add("audio", 4.2, "late") == LATE and al.stats.late_dropped == 1
    assert al.add("face", 3.0 + 49 / 25, "dup") == DUPLICATE and al.stats.duplicates == 1


def test_aligner_holds_the_last_sample_over_short_holes_only():
    al = StreamAligner(hold=0.2)
    stamps = [0.0, 0.04, 0.08, 0.32, 0.36]          # camera skipped frames between 0.08 and 0.32
    steps = _feed(al, [("face", t) for t in stamps])
    got = {round(s.time, 2): s.face for s in steps}
    assert got[0.16] == ("face", 0.08) and got[0.28] == ("face", 0.32)   # held, then nearest
    assert 0.2 in got and got[0.2] == ("face", 0.08)
    assert all(s.face is not None for s in steps)


def test_prior_mode_smooths_faces_and_voice_raises_arousal():
    prior = PriorFusion()
    quiet = prior.step(0.0, {"f1": np.array([0.4, 0.0])}, None)[0]
    assert (quiet.valence, quiet.arousal) == pytest.approx((0.4, 0.0))
    jump = prior.step(0.04, {"f1": np.array([-0.4, 0.0])}, (0.0, -100.0))[0]
    assert 0.0 < jump.valence < 0.4            # smoothed, not jumped
    loud = prior.step(0.08, {"f1": np.array([-0.4, 0.0])}, (1.0, -15.0))[0]
    assert loud.arousal > 0.25


def test_metrics_on_known_cases():
    y = np.sin(np.linspace(0, 10, 200))
    y -= y.mean()
    assert ccc(y, y) == pytest.approx(1.0)
    assert ccc(-y, y) == pytest.approx(-1.0)
    assert ccc(np.full_like(y, 0.3), y) == pytest.approx(0.0)
    assert ccc(y + 1.0, y) < pcc(y + 1.0, y) == pytest.approx(1.0)
    assert rmse(y, y) == 0 and sagr(y, y) == 1.0
    t = torch.from_numpy(np.stack([y, y]))
    assert ccc_loss(t, t).item() == pytest.approx(0.0, abs=1e-6)
    assert ccc_loss(-t, t).item() == pytest.approx(2.0, abs=1e-6)


def test_gru_mode_refuses_embeddings_from_other_models(tmp_path):
    from emo_perception.core.fusion_pipeline import (AudioFrame, FaceFrame, FaceResult, FusionPipeline, GRUMode,
                                                     ModelIdMismatch)
    from emo_perception.inference import load_model
    from emo_perception.nets import checkpoint
    from emo_perception.inference.export import export
    torch.manual_seed(0)
    checkpoint.save(tmp_path / "f.pt",
                    FusionGRU(FusionGRUConfig(face_model_id="face@1", audio_model_id="audio@2")).eval(), "fusion_gru")
    fusion = FusionPipeline(GRUMode(load_model(export(tmp_path / "f.pt", tmp_path).path, "onnxruntime")))
    face = FaceResult("f0", (1, 2, 3, 4), 0.9, 1, np.zeros(256, np.float32), np.zeros(7, np.float32), 0.0, 0.0)
    with pytest.raises(ModelIdMismatch, match="face@9.*trained on 'face@1'"):
        fusion.add_face(FaceFrame(1.0, "cam", "face@9", [face]))
    for k in range(10):   # the audio joins max_wait (0.3 s) after its first stamp: the face came first
        assert fusion.add_face(FaceFrame(1.0 + 0.04 * k, "cam", "face@1", [face])).accepted
        assert fusion.add_audio(AudioFrame(1.0 + 0.04 * k, "audio@2", np.zeros(128, np.float32), 0.5, -30.0)).accepted
    steps = fusion.ready(flush=True)
    person = steps[-1].people[0]
    assert person.track_id == "f0" and -1 <= person.valence <= 1 and person.face and person.voice
    assert person.box == (1, 2, 3, 4)


def test_aligner_skips_a_gap_in_both_streams_instead_of_bursting_empty_steps():
    al = StreamAligner()
    events = [("face", 1.0 + k / 25) for k in range(25)] + [("audio", 1.0 + k / 25) for k in range(25)]
    events += [("face", 101.0 + k / 25) for k in range(25)] + [("audio", 101.0 + k / 25) for k in range(25)]
    steps = _feed(al, sorted(events, key=lambda e: e[1]))
    times = np.array([s.time for s in steps])
    # 25 + 25 steps on data, plus up to `hold` (0.2 s = 5 steps) bridged after the first block
    assert len(steps) <= 56 and all(s.face is not None or s.audio is not None for s in steps)
    assert times.max() >= 101.9 and not np.any((times > 2.2) & (times < 100.9))
