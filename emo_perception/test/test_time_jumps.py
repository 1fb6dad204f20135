"""Time is data and it jumps: each stateful stage resets what a jump invalidates, drops what is only
out of order, and no single stamp decides every later drop (tier 1, no ROS)."""
import numpy as np
import pytest

from emo_perception.core.alignment import ADDED, BAD_STAMP, HELD, JUMPED, StreamAligner
from emo_perception.core.audio_pipeline import AudioPipeline, LogMelStatsEncoder
from emo_perception.core.face_detection import HaarFaceDetector
from emo_perception.core.face_pipeline import FacePipeline, FrameHeld, FrameOutOfOrder
from emo_perception.core.stream_time import JUMP_BACK, JUMP_FORWARD, NEXT, OLDER, StampOrder
from emo_perception.core.tracking import IouTracker
from emo_perception.core.vad import VoiceActivity
from emo_perception.inference import load_model
from emo_perception.paths import resolve_model
from media import demo_frame, speech_16k


def test_stamp_order_tells_next_older_and_jumps_apart():
    order = StampOrder(1.0)
    order.accept(10.0)
    assert [order.classify(t) for t in (10.04, 9.5, 8.9, 11.5)] == [NEXT, OLDER, JUMP_BACK, JUMP_FORWARD]


def _steps(al, samples):
    out = []
    for stream, t in samples:
        al.add(stream, t, (stream, t))
        out += al.ready()
    return out


def test_aligner_follows_a_looping_recording_and_restarts_its_grid():
    al = StreamAligner()
    loop = [(s, round(t, 3)) for k in range(250) for t in [k * 0.04] for s in ("face", "audio")]   # 10 s
    steps = []
    for _ in range(3):              # the same 10 s three times: stamps go back 10 s each loop
        steps += _steps(al, loop)
    steps += al.ready(flush=True)
    assert al.stats.time_jumps == 2
    epochs = [s.epoch for s in steps]
    assert epochs == sorted(epochs) and set(epochs) == {0, 1, 2}
    for e in (0, 1, 2):             # every loop gives (almost) its full 25 Hz output
        assert sum(1 for s in steps if s.epoch == e) >= 245


def test_one_bad_stamp_costs_only_itself():
    al = StreamAligner()
    steps = _steps(al, [(s, round(k * 0.04, 3)) for k in range(50) for s in ("face", "audio")])
    assert al.add("face", 86400.0, "a day ahead") == HELD
    assert al.add("audio", 2.0, "audio goes on") == ADDED
    assert al.add("face", 2.0, "face goes on") == BAD_STAMP and al.stats.bad_stamps == 1
    steps += _steps(al, [(s, round(2.0 + k * 0.04, 3)) for k in range(1, 50) for s in ("face", "audio")])
    assert al.stats.time_jumps == 0 and steps[-1].time > 3.5
    assert all(s.face != "a day ahead" for s in steps)
    # the same, one day back
    assert al.add("audio", -86400.0, "a day back") == HELD
    assert al.add("audio", 4.0, "audio goes on") == BAD_STAMP


def test_a_real_jump_forward_flushes_the_old_time_base_first():
    al = StreamAligner()
    steps = _steps(al, [("face", round(k * 0.04, 3)) for k in range(25)])
    assert al.add("face", 500.0, "x") == HELD
    assert al.add("face", 500.04, "y") == JUMPED
    steps += al.ready(flush=True)
    assert max(s.time for s in steps if s.epoch == 0) == pytest.approx(0.96)   # nothing of the old base lost
    assert [s.time for s in steps if s.epoch == 1] == pytest.approx([500.0, 500.04])


@pytest.fixture(scope="module")
def face_pipeline():
    model = load_model(resolve_model("", "expression_teacher"), "onnxruntime")
    return FacePipeline(HaarFaceDetector(), model, IouTracker(), jump_threshold_s=1.0)


def test_face_pipeline_drops_older_frames_and_resets_tracks_on_a_jump(face_pipeline):
    frame = demo_frame()
    first = face_pipeline.process(frame, 100.0).faces[0].track_id
    assert face_pipeline.process(frame, 100.1).faces[0].track_id == first
    with pytest.raises(FrameOutOfOrder):
        face_pipeline.process(frame, 100.05)
    with pytest.raises(FrameHeld):                         # a looping bag: held until the next frame agrees
        face_pipeline.process(frame, 90.0)
    back = face_pipeline.process(frame, 90.04)
    assert back.time_jump and "back 10.100 s" in back.time_jump and back.faces[0].track_id != first
    assert face_pipeline.process(frame, 90.1).time_jump is None
    assert face_pipeline.counts["time_jumps"] == 1 and face_pipeline.counts["frames_out_of_order"] == 1


def test_one_bad_frame_stamp_costs_only_itself_and_keeps_the_tracks(face_pipeline):
    p = FacePipeline(face_pipeline.detector, face_pipeline.model, IouTracker(), jump_threshold_s=1.0)
    frame = demo_frame()
    first = p.process(frame, 150.0).faces[0].track_id
    for bad in (150.0 + 86400, 0.0):                       # a day ahead; never stamped
        with pytest.raises(FrameHeld):
            p.process(frame, bad)
        after = p.process(frame, p.order.last + 0.1)
        assert after.time_jump is None and after.faces[0].track_id == first
        assert p.bad_stamp and f"{bad:.3f}" in p.bad_stamp
    assert p.counts["bad_stamps"] == 2 and p.counts["time_jumps"] == 0


def test_face_pipeline_survives_degenerate_frames(face_pipeline):
    strip = np.zeros((1, 6000, 3), np.uint8)                # crashed cv2.resize in the detector before
    assert face_pipeline.process(strip, face_pipeline.order.last + 0.1).faces == []


def _chunks(x, t0, chunk=1024, rate=16000):
    return [(x[k:k + chunk], t0 + k / rate) for k in range(0, len(x) - chunk + 1, chunk)]


def test_audio_pipeline_restarts_on_jumps_and_ignores_empty_chunks():
    speech = speech_16k(3.0)
    p = AudioPipeline(LogMelStatsEncoder(), VoiceActivity(), 16000)
    out, jumps = [], []
    for loop in range(3):           # a 3 s recording looped: output in every loop
        n = 0
        for i, (x, t) in enumerate(_chunks(speech, 50.0)):
            r = p.push(x, t)
            n += len(r.windows)
            jumps += [r.time_jump] if r.time_jump else []
            if i % 3 == 0:          # empty chunks in between cost nothing
                assert p.push(np.zeros(0, np.float32), t + 0.01).windows == []
        out.append(n)
    assert out[0] > 40 and out == [out[0]] * 3
    assert len(jumps) == 2 and p.counts["time_jumps"] == 2 and p.counts["empty_chunks"] > 40


def test_rate_mismatch_is_found_also_when_it_starts_mid_stream():
    speech = speech_16k(12.0)
    p = AudioPipeline(LogMelStatsEncoder(), VoiceActivity(), 16000)
    for x, t in _chunks(speech[:16000 * 4], 10.0):
        p.push(x, t)
    assert p.rate.mismatch is None and abs(p.rate.measured - 16000) < 200
    # the driver switches to 48 kHz stereo but AudioInfo still says 16 kHz mono: 1/6 of the samples per second
    for k, (x, _) in enumerate(_chunks(speech[16000 * 4:], 0.0)):
        p.push(x[: 1024 // 6], 14.0 + k * 1024 / 16000)
    assert p.rate.mismatch and "declares 16000 Hz" in p.rate.mismatch
    assert abs(p.rate.measured - 16000 / 6) < 300
