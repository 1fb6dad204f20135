"""Alignment of the face and audio embedding streams onto the 25 Hz annotation grid, by stamps.

Grid points are whole multiples of `period` (40 ms, RECOLA's annotation rate) on the inputs'
clock, so the same stamps always give the same steps whatever the arrival order or timing.
For each grid point the nearest sample of each stream within `tolerance` is taken; failing that,
the latest earlier sample no older than `hold` (a camera node that skipped a few frames under load
still has the person in view); none means that modality is missing at that step (mask 0).
A grid point is emitted as soon as no later sample can be nearer to it: once a stream has a sample at or after it, or, for a stream whose
samples are at least `min_interval` apart (audio: one hop), one within half that interval before
it. A stream more than `max_wait` behind another is treated as late or down and fused without.
Samples that arrive for an already emitted time are dropped and counted, never reordered in.
Grid points with no sample of either stream are not emitted: an AffectArray always rests on data
(an empty one means "a frame was processed and nobody was in it").
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

PERIOD = 0.04


@dataclass
class GridStep:
    time: float
    face: Any = None       # the face-stream item nearest to `time`, or None
    audio: Any = None      # the audio-stream item nearest to `time`, or None


@dataclass
class AlignerStats:
    late_dropped: int = 0
    duplicates: int = 0
    steps: int = 0


@dataclass
class StreamAligner:
    period: float = PERIOD
    tolerance: float = PERIOD      # how far a sample may be from its grid point
    max_wait: float = 0.3          # how long (data time) to wait for a lagging stream
    hold: float = 0.2              # how long a sample stands in for missing newer ones
    min_interval: dict = field(default_factory=dict)   # stream -> smallest spacing of its stamps (s)
    stats: AlignerStats = field(default_factory=AlignerStats)

    def __post_init__(self):
        if not (0 < self.period and 0 <= self.tolerance and self.max_wait >= self.tolerance
                and self.hold >= self.tolerance):
            raise ValueError("need period > 0, tolerance >= 0, max_wait >= tolerance and hold >= tolerance")
        self._streams = {"face": ([], []), "audio": ([], [])}   # name -> (sorted stamps, items)
        self._next_index = None                                 # grid index of the next step

    def add(self, stream: str, stamp: float, item) -> bool:
        """Add one sample; returns False (and counts it) if it is too late or a duplicate."""
        stamps, items = self._streams[stream]
        if self._next_index is not None and stamp < self._next_index * self.period - self.tolerance:
            self.stats.late_dropped += 1
            return False
        pos = bisect.bisect_left(stamps, stamp)
        if pos < len(stamps) and stamps[pos] == stamp:
            self.stats.duplicates += 1
            return False
        stamps.insert(pos, stamp)
        items.insert(pos, item)
        if self._next_index is None:
            self._next_index = math.ceil(round(min(s[0][0] for s in self._streams.values() if s[0]) / self.period, 9))
        return True

    def _newest(self, stream):
        stamps = self._streams[stream][0]
        return stamps[-1] if stamps else None

    def ready(self, flush: bool = False) -> list[GridStep]:
        """Grid steps that can be decided now (all remaining ones if `flush`)."""
        out = []
        if self._next_index is None:
            return out
        newest = [s for s in (self._newest("face"), self._newest("audio")) if s is not None]
        while True:
            t = round(self._next_index * self.period, 9)
            decided = all(self._newest(n) is not None and
                          self._newest(n) >= t - self.min_interval.get(n, 0.0) / 2 for n in self._streams)
            if not (decided or max(newest) >= t + self.max_wait or (flush and t <= max(newest))):
                break
            face, audio = self._nearest("face", t), self._nearest("audio", t)
            if face is None and audio is None:
                # Nothing within reach of t in either stream (both down, or a jump in bag time):
                # no step, and skip straight to the first grid point the next sample can reach,
                # instead of emitting a burst of empty steps across the gap.
                later = [s for st, _ in self._streams.values() for s in st if s > t]
                if not later:
                    break
                self._next_index = max(self._next_index + 1,
                                       math.ceil(round((min(later) - self.tolerance) / self.period, 9)))
                self._prune(round(self._next_index * self.period, 9) - self.period)
                continue
            out.append(GridStep(t, face, audio))
            self._next_index += 1
            self._prune(t)
        self.stats.steps += len(out)
        return out

    def _nearest(self, stream, t):
        stamps, items = self._streams[stream]
        pos = bisect.bisect_left(stamps, t)
        best = None
        for i in (pos - 1, pos):
            if 0 <= i < len(stamps) and abs(stamps[i] - t) <= self.tolerance + 1e-9:
                # Ties go to the earlier sample, so results never depend on what arrives later.
                if best is None or abs(stamps[i] - t) < abs(stamps[best] - t) - 1e-12:
                    best = i
        if best is None and pos > 0 and t - stamps[pos - 1] <= self.hold + 1e-9:
            best = pos - 1   # zero-order hold of the latest earlier sample
        return None if best is None else items[best]

    def _prune(self, t):
        horizon = t + self.period - max(self.tolerance, self.hold)
        for stamps, items in self._streams.values():
            keep = bisect.bisect_left(stamps, horizon - 1e-9)
            # keep one older sample: it can still be nearest to the next grid point
            keep = max(0, keep - 1)
            del stamps[:keep], items[:keep]
