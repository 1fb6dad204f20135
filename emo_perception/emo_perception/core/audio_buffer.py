"""Stamped audio buffer that yields fixed analysis windows every hop, on the audio's own clock.

The clock counts samples from an origin estimated from the chunk stamps. Drivers stamp chunks
when they get them (audio_capture: on arrival), so a stamp is never early but often late by
scheduling jitter: the origin is the earliest one the stamps imply (origin = stamp - samples
received before the chunk / rate), which absorbs jitter without losing samples.
- a chunk implying an origin more than `tolerance_s` later than the current one means samples
  are missing (dropped packets, a paused driver): the stream restarts at that chunk, because a
  window spanning a gap would mix unrelated audio;
- a chunk stamped no later than the previous chunk (out of order, duplicate) is dropped and counted.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .audio_frontend import SAMPLE_RATE


# 96 log-mel frames of 10 ms (VGGish's 0.96 s example) need 95 hops + one 25 ms window of audio.
WINDOW_S = 0.975


def as_mono(samples) -> np.ndarray:
    """float32 (N,) view of an audio chunk; ValueError if it is not mono or not finite."""
    samples = np.asarray(samples, np.float32)
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples of shape (N,), got {samples.shape}")
    if not np.all(np.isfinite(samples)):
        raise ValueError("audio chunk holds NaN or infinite samples; expected finite PCM")
    return samples


@dataclass
class AudioWindow:
    samples: np.ndarray   # (window_samples,) float32, 16 kHz mono
    end_time: float       # seconds, audio clock: time just after the last sample


@dataclass
class BufferStats:
    chunks: int = 0
    gaps: int = 0
    dropped_chunks: int = 0   # out of order / overlapping / duplicate
    windows: int = 0


class AudioWindower:
    def __init__(self, window_s: float = WINDOW_S, hop_s: float = 0.04, tolerance_s: float = 0.15,
                 sample_rate: int = SAMPLE_RATE):
        if not (0 < hop_s <= window_s):
            raise ValueError(f"need 0 < hop_s <= window_s, got hop_s={hop_s}, window_s={window_s}")
        self.rate = sample_rate
        self.window = int(round(window_s * sample_rate))
        self.hop = int(round(hop_s * sample_rate))
        self.tolerance_s = tolerance_s
        self.stats = BufferStats()
        self.reset()

    def reset(self):
        """Forget the stream: the next chunk starts a new one at its own stamp."""
        self._buf = np.zeros(0, np.float32)
        self._origin = None      # audio-clock time of stream sample 0
        self._buf_start = 0      # stream index of _buf[0]
        self._received = 0       # stream samples received so far
        self._next_stop = 0      # stream index just after the next window to emit
        self._last_stamp = None
        self._last_end = -np.inf

    def _time(self, index: int) -> float:
        return self._origin + index / self.rate

    def admit(self, stamp: float) -> str:
        """Decide on a chunk stamped `stamp` before its samples are added, and count it:
        'stale' (out of order or duplicate: drop it), 'new' (first chunk, or samples are missing
        before it: the stream restarts here) or 'continue'. Callers with per-stream state of their
        own (resampler, VAD) restart it on 'new' and keep 'stale' chunks away from it."""
        self.stats.chunks += 1
        if self._origin is not None:
            if stamp <= self._last_stamp:
                self.stats.dropped_chunks += 1
                return "stale"
            implied = stamp - self._received / self.rate
            if implied - self._origin <= self.tolerance_s:
                self._origin = min(self._origin, implied)
                self._last_stamp = stamp
                return "continue"
            self.stats.gaps += 1
            self.reset()
        self._origin, self._next_stop, self._last_stamp = stamp, self.window, stamp
        return "new"

    def append(self, samples: np.ndarray) -> list[AudioWindow]:
        """Add the 16 kHz samples of an admitted chunk; return the windows now complete."""
        self._buf = np.concatenate([self._buf, samples])
        self._received += samples.size
        return self._drain()

    def push(self, samples: np.ndarray, stamp: float) -> list[AudioWindow]:
        """Admit and append a chunk whose first sample is at `stamp` (s).

        Raises ValueError for a non-mono or non-finite chunk (the buffer is left unchanged).
        """
        samples = as_mono(samples)
        if samples.size == 0 or self.admit(stamp) == "stale":
            return []
        return self.append(samples)

    def _drain(self) -> list[AudioWindow]:
        out = []
        while self._next_stop <= self._received:
            stop = self._next_stop - self._buf_start
            # The origin may move earlier between windows: keep end times increasing regardless.
            end = max(self._time(self._next_stop), self._last_end + 1e-6)
            self._last_end = end
            out.append(AudioWindow(self._buf[stop - self.window: stop].copy(), end))
            self._next_stop += self.hop
        # Keep only what future windows can still need: the buffer stays under window + chunk.
        drop = self._next_stop - self.window - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start += drop
        self.stats.windows += len(out)
        return out
