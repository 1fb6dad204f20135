"""Time is data and it jumps: each stateful stage resets what a jump invalidates, drops what is only
out of order, and no single stamp decides every later drop (tier 1, no ROS)."""
import functools

import numpy as np
import pytest

from emo_perception.core.alignment import ADDED, BAD_STAMP, HELD, JUMPED, StreamAligner
from emo_perception.core.audio_pipeline import AudioPipeline, LogMelStatsEncoder
from emo_perception.core.face_detection import HaarFaceDetector
from emo_perception.core.face_pipeline import FacePipeline, FrameHeld, FrameOutOfOrder
from emo_perception.core.audio_buffer import WINDOW_S, AudioWindower
from emo_perception.core.stream_time import HELD as ORDER_HELD
from emo_perception.core.stream_time import (JUMP_BACK, JUMP_FORWARD, NEXT, OLDER, STAMPED, UNSTAMPED, StampOrder,
                                             StampSource)
from emo_perception.core.tracking import IouTracker
from emo_perception.core.vad import VoiceActivity
from emo_perception.inference import load_model
from emo_perception.paths import resolve_model
from media import demo_frame, speech_16k


def test_stamp_order_tells_next_older_and_jumps_apart():
    order = StampOrder(1.0)
    order.accept(10.0)
    assert [order.classify(t) for t in (10.04, 9.5, 8.9, 11.5)] == [NEXT, OLDER, JUMP_BACK, JUMP_FORWARD]


def test_stamp_order_holds_a_jump_until_the_next_stamp_says_what_it_was():
    order = StampOrder(1.0)
    order.admit(10.0)
    assert order.admit(86410.0) == ORDER_HELD and order.admit(10.04) == NEXT and order.bad_stamp == 86410.0
    assert order.admit(0.0) == ORDER_HELD and order.admit(0.0) == ORDER_HELD and order.bad_stamp == 0.0   # no clock
    assert order.admit(5.0) == ORDER_HELD and order.admit(5.04) == JUMP_BACK and "back 5.040 s" in order.jump
    assert order.last == 5.04 and order.admit(5.08) == NEXT and order.jump is None


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


# ------------------------------------------------------------------ stamps as robots deliver them
SPEECH_S, FAULT = 2.6, 20     # seconds of speech; the chunk (64 ms) that goes wrong: 1.28 s in


@functools.lru_cache
def _speech():
    return speech_16k(SPEECH_S)


def _run_audio(rate=16000, chunk=1024, fault=None, t0=100.0):
    """Window end time -> embedding of the speech pushed chunk by chunk, the counts and the log
    lines; `fault(k, x, t)` may return None (chunk lost) or another (x, t)."""
    x = _speech() if rate == 16000 else np.repeat(_speech(), rate // 16000)
    p = AudioPipeline(LogMelStatsEncoder(), VoiceActivity(), rate)
    out, notes = {}, []
    for k in range(len(x) // chunk):
        c, t = x[k * chunk:(k + 1) * chunk], t0 + k * chunk / rate
        if fault is not None:
            changed = fault(k, c, t)
            if changed is None:
                continue
            c, t = changed
        r = p.push(c, t)
        out.update((round(w.end_time, 9), w.embedding) for w in r.windows)
        notes += [n for n in (r.time_jump, r.bad_stamp, r.gap) if n]
    return out, p.counts, notes


_clean = functools.lru_cache(_run_audio)


@pytest.mark.parametrize("rate,chunk", [(16000, 1024), (48000, 3072)])
def test_a_lost_audio_chunk_leaves_a_counted_gap_and_moves_no_later_window(rate, chunk):
    clean, _, _ = _clean(rate, chunk)
    for lost in ({FAULT}, {FAULT, FAULT + 1}):          # 64 ms, 128 ms: below gap_tolerance, filled
        out, counts, notes = _run_audio(rate, chunk, lambda k, c, t: None if k in lost else (c, t))
        assert sorted(out) == sorted(clean), "a window moved or went missing"
        # windows that start after the hole hold the same samples (48 kHz: after the resampler's filter memory)
        after = [t for t in out if t - WINDOW_S > 100.0 + (max(lost) + 1) * 0.064 + (0.05 if rate != 16000 else 0)]
        assert after and all(np.array_equal(out[t], clean[t]) for t in after)
        assert counts["gaps"] == counts["gaps_filled"] == 1 and counts["samples_filled"] == len(lost) * chunk
        assert "filled with silence" in notes[0]
    out, counts, notes = _run_audio(rate, chunk, lambda k, c, t: None if FAULT <= k < FAULT + 3 else (c, t))
    assert set(out) < set(clean) and counts["gaps"] == 1 and counts["gaps_filled"] == 0   # 192 ms: skipped
    assert "no window spans the hole" in notes[0] and counts["time_jumps"] == 0


@pytest.mark.parametrize("bad", [0.0, 86400.0, 100.0 + FAULT * 0.064 + 0.5])
def test_one_bad_audio_stamp_costs_nothing(bad):
    """A chunk stamped 0, a day ahead or 0.5 s late in good audio: held, then placed by its
    neighbours; before, it restarted the stream (twice) and cost 1.1 s of embeddings."""
    clean, _, _ = _clean(16000, 1024)
    out, counts, notes = _run_audio(fault=lambda k, c, t: (c, bad) if k == FAULT else (c, t))
    assert sorted(out) == sorted(clean) and all(np.array_equal(out[t], clean[t]) for t in out)
    assert counts["bad_stamps"] == 1 and counts["time_jumps"] == 0 and counts["gaps"] == 0
    assert len(notes) == 1 and "its samples were put where they belong" in notes[0]


def test_audio_time_follows_drifting_stamps_and_absorbs_jitter():
    """A sound card 1000 ppm slower than the stamp clock, stamped on arrival with 0-30 ms of jitter:
    no gap, no bad stamp, no sample more or less, and the windows follow the stamps (the windower
    runs the pipeline's clock). Before, the origin only ever moved earlier: 38 ms off after 38 s."""
    w, chunk, n, f = AudioWindower(), np.zeros(1024, np.float32), 600, 1.001     # 38 s
    late = np.random.default_rng(3).uniform(0.0, 0.03, n)
    ends = np.array([win.end_time for k in range(n) for win in w.push(chunk, 100.0 + k * 0.064 * f + late[k])])
    assert w.stats.gaps == 0 and w.stats.bad_stamps == 0 and len(ends) == (n * 1024 - 15600) // 640 + 1
    truth = 100.0 + (15600 + 640 * np.arange(len(ends))) / 16000 * f    # where each window's last sample is
    assert np.all(np.diff(ends) > 0) and np.abs(ends - truth)[len(ends) // 2:].max() < 0.005


def test_stamp_source_finds_unstamped_streams_and_places_by_arrival():
    src = StampSource("header")
    assert [src.place(t) for t in (5.0, 5.1, 5.1, 0.0, 0.0)] == [(5.0, None), (5.1, None), (5.1, None),
                                                                 (0.0, None), (0.0, None)]
    assert src.place(0.0) == (None, UNSTAMPED) and src.place(0.0) == (None, None) and src.unstamped
    assert src.place(7.0) == (7.0, STAMPED) and not src.unstamped
    assert StampSource("arrival").place(0.0, 12.5) == (12.5, None)
    with pytest.raises(ValueError, match="arrival"):
        StampSource("arrival").place(0.0)
    with pytest.raises(ValueError, match="allowed: header, arrival"):
        StampSource("gps")


def test_audio_handler_says_an_unstamped_stream_once_and_stamps_on_arrival():
    """The handler the audio node and the offline tools share (duck-typed messages, as bags give)."""
    from types import SimpleNamespace

    from emo_perception import conversions
    from emo_perception.core.audio_pipeline import AudioStream
    from emo_perception.runtime.handlers import AudioHandler

    def chunk(k, stamp):
        data = conversions.mono_to_audio_bytes(speech[k * 1024:(k + 1) * 1024])
        return SimpleNamespace(header=SimpleNamespace(stamp=conversions.seconds_to_stamp(stamp, SimpleNamespace)),
                               audio=SimpleNamespace(data=data))

    speech = speech_16k(2.0)
    info = SimpleNamespace(channels=1, sample_rate=16000, sample_format="S16LE", coding_format="wave")
    header = AudioHandler(AudioStream(LogMelStatsEncoder(), VoiceActivity()))
    arrival = AudioHandler(AudioStream(LogMelStatsEncoder(), VoiceActivity(), stamp_position="end"), "arrival")
    for h in (header, arrival):
        h.info(info)
    said, windows = [], 0
    for k in range(30):
        for p in header.audio(chunk(k, 0.0)).problems:
            said.append((p.reason, p.quiet))
        windows += len(arrival.audio(chunk(k, 0.0), received=50.0 + (k + 1) * 0.064).result.windows)
    unstamped = [q for r, q in said if r == "unstamped_chunks"]
    assert len(unstamped) == 28 and unstamped.count(False) == 1      # the 3rd chunk on: said once, then counted
    assert windows == (30 * 1024 - 15600) // 640 + 1


def test_one_streams_clock_never_resets_the_other():
    """Audio on another clock while the camera goes on (a driver stamping from its own start): held,
    never a time jump, dropped and counted per stream; the face steps go on in their own time base."""
    al = StreamAligner()
    both = [(s, round(100 + k * 0.04, 3)) for k in range(50) for s in ("face", "audio")]
    steps = _steps(al, both)
    mixed = [p for k in range(50, 150)
             for p in (("face", round(100 + k * 0.04, 3)), ("audio", round(3 + k * 0.04, 3)))]
    steps += _steps(al, mixed)
    assert al.stats.time_jumps == 0 and al.epoch == 0
    assert al.stats.off_clock["audio"] >= 80 and al.stats.off_clock["face"] == 0
    assert steps[-1].time > 105.5 and all(s.audio is None or s.audio[1] >= 100 for s in steps)
    assert al.held <= 14          # holding stays bounded (gone_after of its own stamps)


def test_a_jump_of_both_streams_needs_both_or_the_others_silence():
    al = StreamAligner()
    _steps(al, [(s, round(k * 0.04, 3)) for k in range(50) for s in ("face", "audio")])
    assert al.add("face", 500.0, "f") == HELD
    assert al.add("face", 500.04, "f") == HELD           # audio was producing: its word is awaited
    assert al.add("audio", 500.02, "a") == JUMPED and al.stats.time_jumps == 1
    # audio stops at the next jump: the face alone confirms it after gone_after of its own stamps
    al.ready(flush=True)
    for k in range(20):
        verdict = al.add("face", round(900 + k * 0.04, 3), "f")
        if verdict == JUMPED:
            break
    assert verdict == JUMPED and k * 0.04 > al.gone_after and al.stats.bad_stamps == 0
