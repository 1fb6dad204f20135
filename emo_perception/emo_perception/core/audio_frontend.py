"""Audio front-end shared by training and runtime: resampling to 16 kHz and VGGish-style log-mel.

Log-mel parameters follow VGGish (Hershey et al. 2017) as used by Schoneveld et al. 2021:
16 kHz, 25 ms periodic-Hann window, 10 ms hop, 512-point FFT, 64 Slaney mel bands 125-7500 Hz,
log(mel + 0.01). 0.975 s of audio gives 96 frames x 64 bands (VGGish's 0.96 s example).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class LogMelConfig:
    sample_rate: int = SAMPLE_RATE
    window_length: int = 400     # 25 ms
    hop_length: int = 160        # 10 ms
    n_fft: int = 512             # next power of two above the window
    n_mels: int = 64
    f_min: float = 125.0
    f_max: float = 7500.0
    log_offset: float = 0.01     # VGGish: avoids log(0) and compresses silence

    def frames(self, n_samples: int) -> int:
        return 1 + (n_samples - self.window_length) // self.hop_length if n_samples >= self.window_length else 0


def resample(x: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling (libsoxr, 'HQ'): anti-aliased, so 48 kHz speech keeps no images."""
    if from_rate == to_rate:
        return np.asarray(x, np.float32)
    import soxr

    return soxr.resample(np.asarray(x, np.float32), from_rate, to_rate, quality="HQ").astype(np.float32)


class StreamResampler:
    """Chunk-by-chunk resampling with state (no clicks at chunk borders), for live audio."""

    def __init__(self, from_rate: int, to_rate: int = SAMPLE_RATE):
        self.from_rate, self.to_rate = from_rate, to_rate
        self._stream = None
        if from_rate != to_rate:
            import soxr

            self._stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32", quality="HQ")

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        if self._stream is None:
            return np.asarray(chunk, np.float32)
        return self._stream.resample_chunk(np.asarray(chunk, np.float32))


def _hz_to_mel(f):
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, np.float64)
    lin = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, lin)


def _mel_to_hz(m):
    m = np.asarray(m, np.float64)
    lin = m * (200.0 / 3)
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log, lin)


@lru_cache(maxsize=8)
def mel_filterbank(cfg: LogMelConfig = LogMelConfig()) -> np.ndarray:
    """(n_fft//2+1, n_mels) Slaney-normalised triangular filters (area-normalised, as librosa's default)."""
    fft_hz = np.linspace(0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(cfg.f_min), _hz_to_mel(cfg.f_max), cfg.n_mels + 2))
    lower, center, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (fft_hz[None, :] - lower) / (center - lower)
    falling = (upper - fft_hz[None, :]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (upper - lower))
    return weights.T.astype(np.float64)


@lru_cache(maxsize=8)
def _window(cfg: LogMelConfig) -> np.ndarray:
    n = np.arange(cfg.window_length)
    return 0.5 - 0.5 * np.cos(2 * np.pi * n / cfg.window_length)  # periodic Hann


def mel_spectrogram(samples: np.ndarray, cfg: LogMelConfig = LogMelConfig(), power: float = 1.0) -> np.ndarray:
    """16 kHz mono -> (frames, n_mels) mel spectrogram of |STFT|**power (frames fully inside, no padding)."""
    x = np.asarray(samples, np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected mono samples of shape (N,), got {x.shape}")
    n_frames = cfg.frames(x.size)
    if n_frames == 0:
        raise ValueError(f"{x.size} samples is shorter than one {cfg.window_length}-sample window")
    idx = np.arange(cfg.window_length)[None, :] + cfg.hop_length * np.arange(n_frames)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * _window(cfg), n=cfg.n_fft, axis=1)) ** power
    return spec @ mel_filterbank(cfg)


def log_mel(samples: np.ndarray, cfg: LogMelConfig = LogMelConfig()) -> np.ndarray:
    """16 kHz mono -> (frames, n_mels) float32 log-mel, VGGish-style log(mel magnitude + 0.01)."""
    return np.log(mel_spectrogram(samples, cfg, power=1.0) + cfg.log_offset).astype(np.float32)


def loudness_dbfs(samples: np.ndarray) -> float:
    """RMS level in dB full scale; -100 for digital silence."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
    return max(-100.0, 20.0 * np.log10(max(rms, 1e-5)))
