"""Alignment of the face and audio embedding streams onto the 25 Hz annotation grid, by stamps.

Grid points are whole multiples of `period` (40 ms, RECOLA's annotation rate) on the inputs'
clock, so the same stamps always give the same steps whatever the arrival order or timing.
For each grid point the nearest sample of each stream within `tolerance` is taken; failing that,
the latest earlier sample no older than `hold` (a camera node that skipped a few frames under load
still has the person in view); none means that modality is missing at that step (mask 0).
A grid point is emitted as soon as no later sample can be nearer to it: once a stream has a sample at
or after it, or, for a stream whose samples are at least `min_interval` apart (audio: one hop), one
within half that interval before it. A stream more than `max_wait` behind another is treated as late
or down and fused without. Samples that arrive for an already emitted time are dropped and counted, never reordered in.
Grid points with no sample of either stream are not emitted: an AffectArray always rests on data
(an empty one means "a frame was processed and nobody was in it").

Time jumps (a looping bag, a clock step, one bad stamp): a sample more than `jump_threshold`
behind the next grid point or ahead of the newest sample is held, not trusted. If the next
sample (of any stream) agrees with it, the time base really changed: what is left of the old one
is flushed as steps, everything resets, and steps of the new base carry a new `epoch` (so fusion
state resets too). If instead its own stream goes on in the old base, it was one bad stamp:
dropped and counted. One stamp can therefore cost at most itself, never every later sample.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

from .stream_time import TIME_JUMP_S, describe_jump

PERIOD = 0.04      # s: the grid, RECOLA's annotation rate (25 Hz); training, evaluation and the fusion share it
TOLERANCE = PERIOD  # s: how far a sample may be from its grid point
HOLD = 0.2         # s: how long a sample stands in for missing newer ones (camera frames skipped under load)
MAX_WAIT = 0.3     # s of data time to wait for a lagging stream before fusing without it
# verdicts of StreamAligner.add
ADDED, LATE, DUPLICATE, HELD, BAD_STAMP, JUMPED = "added", "late", "duplicate", "held", "bad_stamp", "jumped"


@dataclass
class GridStep:
    time: float
    face: Any = None       # the face-stream item nearest to `time`, or None
    audio: Any = None      # the audio-stream item nearest to `time`, or None
    epoch: int = 0         # time base: increases at every confirmed time jump


@dataclass
class AlignerStats:
    late_dropped: int = 0
    duplicates: int = 0
    steps: int = 0
    time_jumps: int = 0
    bad_stamps: int = 0


@dataclass
class StreamAligner:
    period: float = PERIOD
    tolerance: float = TOLERANCE   # how far a sample may be from its grid point
    max_wait: float = MAX_WAIT     # how long (data time) to wait for a lagging stream
    hold: float = HOLD             # how long a sample stands in for missing newer ones
    min_interval: dict = field(default_factory=dict)   # stream -> smallest spacing of its stamps (s)
    jump_threshold: float = TIME_JUMP_S                 # further off than this is another time base
    stats: AlignerStats = field(default_factory=AlignerStats)

    def __post_init__(self):
        if not (0 < self.period and 0 <= self.tolerance and self.max_wait >= self.tolerance
                and self.hold >= self.tolerance and self.jump_threshold > max(self.max_wait, self.hold)):
            raise ValueError("need period > 0, tolerance >= 0, max_wait >= tolerance, hold >= tolerance and "
                             "jump_threshold > max_wait and hold")
        self.epoch = 0
        self.last_jump = ""      # describe_jump() text of the latest confirmed jump
        self._carry = []         # steps flushed from the old time base at a jump, not yet returned
        self._pending = []       # (stream, stamp, item) held as a possible new time base
        self._clear()

    def _clear(self):
        self._streams = {"face": ([], []), "audio": ([], [])}   # name -> (sorted stamps, items)
        self._next_index = None                                 # grid index of the next step
        self._newest_all = None

    def add(self, stream: str, stamp: float, item) -> str:
        """Add one sample; returns ADDED, LATE or DUPLICATE (dropped, counted), HELD (a possible
        time jump), BAD_STAMP (a held sample turned out to be one bad stamp; this one is ADDED)
        or JUMPED (a new time base confirmed: this and the held samples start it)."""
        if self._in_base(stamp):
            verdict = ADDED
            if self._pending and self._pending[-1][0] == stream:
                # its own stream goes on in the old time base: the held stamp was a bad one
                self.stats.bad_stamps += len(self._pending)
                self._pending = []
                verdict = BAD_STAMP
            added = self._insert(stream, stamp, item)
            return verdict if added == ADDED else added
        if self._pending and abs(stamp - self._pending[-1][1]) <= self.jump_threshold:
            self._jump(stamp)
            for s, t, it in self._pending + [(stream, stamp, item)]:
                self._insert(s, t, it)
            self._pending = []
            return JUMPED
        self._pending = [(stream, stamp, item)]
        return HELD

    def _in_base(self, stamp) -> bool:
        if self._next_index is None:
            return True
        next_time = self._next_index * self.period
        return next_time - self.jump_threshold <= stamp <= max(self._newest_all, next_time) + self.jump_threshold

    def _jump(self, new_stamp):
        old = self._newest_all if self._newest_all is not None else new_stamp
        # ready() returns what is carried already with the flushed steps (`+=` carried them twice)
        self._carry = self.ready(flush=True)
        self.stats.time_jumps += 1
        self.epoch += 1
        self.last_jump = describe_jump(old, new_stamp)
        self._clear()

    def _insert(self, stream, stamp, item) -> str:
        stamps, items = self._streams[stream]
        if self._next_index is not None and stamp < self._next_index * self.period - self.tolerance:
            self.stats.late_dropped += 1
            return LATE
        pos = bisect.bisect_left(stamps, stamp)
        if pos < len(stamps) and stamps[pos] == stamp:
            self.stats.duplicates += 1
            return DUPLICATE
        stamps.insert(pos, stamp)
        items.insert(pos, item)
        self._newest_all = stamp if self._newest_all is None else max(self._newest_all, stamp)
        if self._next_index is None:
            self._next_index = math.ceil(round(min(s[0][0] for s in self._streams.values() if s[0]) / self.period, 9))
        return ADDED

    def _newest(self, stream):
        stamps = self._streams[stream][0]
        return stamps[-1] if stamps else None

    def ready(self, flush: bool = False) -> list[GridStep]:
        """Grid steps that can be decided now (all remaining ones if `flush`)."""
        out, self._carry = self._carry, []
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
            out.append(GridStep(t, face, audio, self.epoch))
            self.stats.steps += 1
            self._next_index += 1
            self._prune(t)
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
