"""Resampling, windowing, log-mel and voice activity (tier 1, no ROS)."""
import numpy as np
import pytest

from emo_perception.core.audio_buffer import WINDOW_S, AudioWindower
from emo_perception.core.audio_frontend import (LogMelConfig, StreamResampler, log_mel, loudness_dbfs,
                                                mel_spectrogram, resample)
from emo_perception.core.vad import VoiceActivity
from media import speech_16k


def test_log_mel_matches_librosa_within_1e_3_db():
    librosa = pytest.importorskip("librosa")
    x = speech_16k(3.0).astype(np.float64)
    cfg = LogMelConfig()
    ref = librosa.feature.melspectrogram(
        y=x, sr=16000, n_fft=512, win_length=400, hop_length=160, window="hann", center=False,
        power=2.0, n_mels=64, fmin=125, fmax=7500, htk=False, norm="slaney").T
    # librosa centres the 400-sample window inside each 512-sample frame: frame i of librosa
    # is our frame i of the signal shifted by (512 - 400) / 2 samples.
    ours = mel_spectrogram(x[56:], cfg, power=2.0)
    n = min(len(ours), len(ref))
    db = lambda p: 10 * np.log10(np.maximum(p, 1e-10))  # noqa: E731
    assert n > 250
    assert np.abs(db(ours[:n]) - db(ref[:n])).max() <= 1e-3


def test_log_mel_window_shape_is_96_by_64():
    assert log_mel(np.zeros(round(WINDOW_S * 16000), np.float32)).shape == (96, 64)
    with pytest.raises(ValueError, match="shorter"):
        log_mel(np.zeros(100, np.float32))


def test_resampler_is_anti_aliased_and_streaming_matches_offline():
    t = np.arange(48000) / 48000
    speech_band = np.sin(2 * np.pi * 1000 * t)
    alias = np.sin(2 * np.pi * 12000 * t)     # above 8 kHz: must vanish, not fold to 4 kHz
    y = resample((speech_band + alias) * 0.4, 48000)
    assert len(y) == 16000
    spec = np.abs(np.fft.rfft(y[2000:14000] * np.hanning(12000)))
    freqs = np.fft.rfftfreq(12000, 1 / 16000)
    assert spec[np.abs(freqs - 4000) < 50].max() < 1e-3 * spec[np.abs(freqs - 1000) < 50].max()
    stream = StreamResampler(48000)
    chunks = [stream(c) for c in np.array_split((speech_band * 0.4).astype(np.float32), 37)]
    streamed = np.concatenate(chunks)
    offline = resample(speech_band * 0.4, 48000)
    n = min(len(streamed), len(offline)) - 200
    assert n > 15000 and np.abs(streamed[:n] - offline[:n]).max() < 1e-3


def test_windower_emits_every_hop_with_end_stamps_from_the_audio_clock():
    w = AudioWindower(hop_s=0.04)
    x = np.arange(16000 * 2, dtype=np.float32)
    windows = []
    for k in range(0, len(x), 1024):             # audio_capture-like 64 ms chunks
        windows += w.push(x[k:k + 1024], 100.0 + k / 16000)
    ends = [win.end_time for win in windows]
    assert ends[0] == pytest.approx(100 + WINDOW_S)
    assert np.allclose(np.diff(ends), 0.04)
    assert len(windows) == 1 + (len(x) - 15600) // 640
    last = windows[-1]
    stop = int(round((last.end_time - 100.0) * 16000))
    assert np.array_equal(last.samples, x[stop - 15600: stop])


def test_windower_handles_gaps_overlaps_and_bad_chunks():
    w = AudioWindower()
    chunk = np.zeros(1600, np.float32)   # 0.1 s
    for k in range(12):
        w.push(chunk, 5.0 + 0.1 * k)
    assert w.stats.windows > 0
    assert w.push(chunk, 5.3) == []                  # out of order / overlapping: dropped
    assert w.stats.dropped_chunks == 1
    assert w.push(chunk, 6.7) == []                  # 0.5 s missing (> gap_tolerance): held for the next chunk
    out = w.push(chunk, 6.8)                         # which confirms it: no window spans the hole
    assert w.stats.gaps == 1 and w.stats.gaps_filled == 0 and w.stats.time_jumps == 0
    for k in range(2, 11):
        out += w.push(chunk, 6.7 + 0.1 * k)
    # the first window after the hole starts after it, on the same hop grid as before it
    assert 6.7 <= out[0].end_time - WINDOW_S < 6.74
    assert (out[0].end_time - 5.0 - WINDOW_S) / 0.04 == pytest.approx(round((out[0].end_time - 5.0 - WINDOW_S) / 0.04))
    w.push(chunk, 9.7)                               # 2 s further: a new time base once the next chunk agrees
    w.push(chunk, 9.8)
    assert w.stats.time_jumps == 1 and w.stats.gaps == 1
    with pytest.raises(ValueError, match="NaN"):
        w.push(np.array([0.0, np.nan], np.float32), 8.4)
    with pytest.raises(ValueError, match="mono"):
        w.push(np.zeros((2, 10), np.float32), 8.4)
    assert w.push(np.zeros(0, np.float32), 8.4) == []


def test_windower_absorbs_late_stamps_from_scheduling_jitter():
    w = AudioWindower()
    rng = np.random.default_rng(1)
    chunk = np.zeros(1024, np.float32)
    # stamped on arrival: late by 0-100 ms, and never before the previous chunk's stamp
    stamps = np.maximum.accumulate(50.0 + np.arange(200) * 0.064 + rng.uniform(0, 0.1, 200)) + np.arange(200) * 1e-4
    windows = []
    for stamp in stamps:
        windows += w.push(chunk, stamp)
    assert w.stats.gaps == 0 and w.stats.dropped_chunks == 0
    assert len(windows) == 1 + (200 * 1024 - 15600) // 640
    steps = np.diff([win.end_time for win in windows])
    assert np.all(steps > 0) and np.median(steps) == pytest.approx(0.04)


def test_voice_activity_separates_real_speech_from_silence_and_noise():
    vad = VoiceActivity()
    speech = speech_16k(8.0)
    probs = [vad(speech[k:k + 640]) for k in range(0, len(speech), 640)]
    vad.reset()
    noise = (np.random.default_rng(0).normal(0, 0.01, 16000 * 3)).astype(np.float32)
    quiet = [vad(noise[k:k + 640]) for k in range(0, len(noise), 640)]
    assert np.mean(np.array(probs) > 0.5) > 0.4
    assert np.mean(np.array(quiet) > 0.5) < 0.05
    assert loudness_dbfs(np.zeros(100)) == -100.0
    assert loudness_dbfs(np.full(100, 0.5)) == pytest.approx(-6.02, abs=0.01)


def test_audio_pipeline_output_is_unchanged_by_rejected_chunks():
    from emo_perception.core.audio_pipeline import AudioPipeline, LogMelStatsEncoder
    speech48 = np.repeat(speech_16k(3.0), 3)
    chunks = [(speech48[k:k + 4800], 10.0 + k / 48000) for k in range(0, len(speech48) - 4800, 4800)]

    def run(extra):
        p = AudioPipeline(LogMelStatsEncoder(), VoiceActivity(), 48000)
        out = []
        for i, (x, t) in enumerate(chunks):
            out += p.push(x, t).windows
            for bad in extra.get(i, []):
                try:
                    out += p.push(*bad).windows
                except ValueError:
                    pass
        return out

    clean = run({})
    noisy = run({5: [(chunks[5][0], chunks[5][1])],                       # duplicate
                 8: [(chunks[2][0], chunks[2][1])],                       # out of order
                 9: [(np.full(4800, np.nan, np.float32), 10.9)],          # NaN
                 11: [(np.zeros((2, 10), np.float32), 11.1)]})            # not mono
    assert len(clean) == len(noisy) > 40
    for a, b in zip(clean, noisy):
        assert a.end_time == b.end_time and np.array_equal(a.embedding, b.embedding)
        assert a.voice_probability == b.voice_probability
