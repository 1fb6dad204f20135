"""PCM chunks -> windows every hop -> audio embeddings: the audio node's one call into the core."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .audio_buffer import WINDOW_S, AudioWindower, as_mono
from .audio_frontend import SAMPLE_RATE, StreamResampler, log_mel, loudness_dbfs

RATE_CHECK_AFTER_S = 3.0     # data time before the declared sample rate is checked
RATE_MISMATCH = 0.05         # relative difference that counts as a wrong sample rate


class LogMelStatsEncoder:
    """Untrained, deterministic audio embedding: per-band mean and std of the log-mel window (128-d).

    The default until a trained audio encoder is exported: no random weights, and it carries
    loudness and spectral shape, which is what the prior mode needs.
    """

    model_id = "logmel_stats@1"
    dim = 128

    def __call__(self, mel: np.ndarray) -> np.ndarray:          # (frames, 64)
        return np.concatenate([mel.mean(axis=0), mel.std(axis=0)]).astype(np.float32)


class NetworkAudioEncoder:
    """An exported audio_encoder model behind any backend."""

    def __init__(self, model):
        self.model, self.model_id = model, model.card.model_id
        self.dim = int(model.card.outputs[0]["shape"][-1])

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        return self.model.run({"log_mel": mel[None, None]})["embedding"][0]


@dataclass
class AudioResult:
    end_time: float          # audio-clock time of the end of the window
    embedding: np.ndarray
    voice_probability: float
    loudness_dbfs: float


class SampleRateMismatch(ValueError):
    pass


class AudioPipeline:
    def __init__(self, encoder, vad, sample_rate: int, hop_s: float = 0.04, window_s: float = WINDOW_S,
                 tolerance_s: float = 0.15):
        self.encoder, self.vad = encoder, vad
        self.input_rate = sample_rate
        self.resampler = StreamResampler(sample_rate, SAMPLE_RATE)
        self.windower = AudioWindower(window_s, hop_s, tolerance_s)
        self._rate_origin = None   # (first stamp, input samples since) for the sample-rate check
        self._rate_checked = False

    def push(self, mono: np.ndarray, stamp: float, stamp_marks_end: bool = False) -> list[AudioResult]:
        """Mono float32 chunk at the input rate, stamped at its first sample (or, with
        `stamp_marks_end`, just after its last one, as drivers that stamp on arrival do).

        Raises ValueError for NaN/inf or non-mono input and SampleRateMismatch (once) when the
        stamps show the audio arriving at a rate other than the declared one.
        """
        mono = as_mono(mono)
        start = stamp - mono.size / self.input_rate if stamp_marks_end else stamp
        verdict = self.windower.admit(start)
        if verdict == "stale":
            return []   # kept from the resampler and VAD: their state holds only accepted audio
        if verdict == "new":
            self.resampler = StreamResampler(self.input_rate, SAMPLE_RATE)
            self.vad.reset()
            self._rate_origin = [start, 0]
        self._check_rate(start)
        samples = self.resampler(mono)
        windows = self.windower.append(samples)
        self._rate_origin[1] += mono.size
        self.vad(samples)
        out = []
        for win in windows:
            mel = log_mel(win.samples)
            out.append(AudioResult(win.end_time, self.encoder(mel), self.vad.probability, loudness_dbfs(win.samples)))
        return out

    def _check_rate(self, stamp):
        t0, n = self._rate_origin   # n: input samples from t0 up to this chunk
        if self._rate_checked or stamp - t0 < RATE_CHECK_AFTER_S:
            return
        self._rate_checked = True
        measured = n / (stamp - t0)
        if abs(measured - self.input_rate) > RATE_MISMATCH * self.input_rate:
            raise SampleRateMismatch(f"audio arrives at about {measured:.0f} samples/s by its stamps, but "
                                     f"AudioInfo declares {self.input_rate} Hz; fix the driver's sample_rate")
