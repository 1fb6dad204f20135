"""Alignment of the face and audio embedding streams onto the 25 Hz annotation grid, by stamps.

Grid points are whole multiples of `period` (40 ms, RECOLA's annotation rate) on the inputs'
clock, so the same stamps always give the same steps whatever the arrival order or timing. The
grid starts at the first sample (the grid point at or just before it, when within `tolerance`).
For each grid point the nearest sample of each stream within `tolerance` is taken; failing that,
the latest earlier sample no older than `hold` (a camera node that skipped a few frames under load
still has the person in view); none means that modality is missing at that step (mask 0).
Grid points with no sample of either stream are not emitted: an AffectArray always rests on data
(an empty one means "a frame was processed and nobody was in it").

When a step goes out (docs/robustness.md, "When a fused step goes out"). A step is emitted as soon
as every stream either has a sample at or after it (for a stream whose samples are at least
`min_interval` apart, audio: one hop, one within half that interval before it) or is not waited for:
- a stream that has produced nothing yet in this time base is not waited for (camera only; the first
  second, before the first audio window is full);
- a stream that starts, or comes back after a silence longer than `gone_after` in its own stamps,
  while another stream runs, is fused from `max_wait` after its first stamp (its join). The steps
  before were decided without it, live before its first sample could arrive; so they never use it,
  and an offline replay, where it arrives at once, gives the same steps. Which stream started is
  decided by stamps: a stream whose first sample arrives second but is stamped before every other
  stream's first (a camera frame takes longer to process than a microphone chunk) started the time
  base, and the others joined (only the steps that went out before it arrived were decided otherwise);
- a stream whose newest stamp is more than `gone_after` (+ hold or tolerance) before the step:
  whatever it sends next starts a new run, joined as above, so it cannot change the step;
- a stream that lags: once another stream is `max_wait` + its measured lag past the step. The lag
  of each stream is measured at each of its arrivals (how far the other stream's newest stamp is
  ahead of its own), taken as the largest of the last LAG_WINDOW and bounded by `max_lag` (as
  `max_lag` while not measured yet: it has not arrived since the other stream started): a camera
  whose frames arrive 0.6 s after their stamps is waited for, not dropped as late.
A step that nothing waits for goes out once data time (any stream's newest stamp) has reached it.
So output equals stamp order (an offline replay) for any arrival order in which each sample arrives
less than max_wait - tolerance after the other stream's samples of its time, when the earliest
sample arrives first. Samples that arrive for an already emitted time are dropped and counted
(`late_dropped`, per stream in `late`), never reordered in.

Time jumps (a looping bag, a clock step, one bad stamp): a sample more than `jump_threshold`
behind the next grid point or ahead of the newest sample is held, not trusted. The time base really
changed once held samples that agree with each other come from every stream producing in the old
base (a looping bag: both streams jump; camera-only: two frames), or the held streams have run on
their own for `gone_after` while the others sent nothing: what is left of the old base is flushed
as steps, everything resets (lags and joins too), and steps of the new base carry a new `epoch`
(so fusion state resets too). If instead a held sample's own stream goes on in the old base, it was
one bad stamp: dropped and counted. One stamp can therefore cost at most itself, never every later
sample; and one stream's clock never resets the other: a stream whose stamps keep disagreeing
with a stream that goes on in the old base is dropped and counted per stream (`off_clock`).
"""
from __future__ import annotations

import bisect
import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from .stream_time import TIME_JUMP_S, describe_jump

PERIOD = 0.04      # s: the grid, RECOLA's annotation rate (25 Hz); training, evaluation and the fusion share it
TOLERANCE = PERIOD  # s: how far a sample may be from its grid point
HOLD = 0.2         # s: how long a sample stands in for missing newer ones (camera frames skipped under load)
MAX_WAIT = 0.3     # s of data time to wait for a lagging stream (beyond its measured lag) before fusing without it
MAX_LAG = 0.8      # s: the largest measured lag of a stream that is waited for (a camera with 0.6 s latency)
GONE_AFTER = 0.5   # s: a silence (in a stream's own stamps) after which it is not waited for and joins anew
LAG_WINDOW = 50    # a stream's lag is the largest of its last this many arrivals (2-3 s at 15-25 Hz)
STREAMS = ("face", "audio")
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
    off_clock: Counter = field(default_factory=Counter)   # stream -> samples dropped: on another clock
    clock_offset: dict = field(default_factory=dict)      # stream -> its newest held stamp - the newest in base
    late: Counter = field(default_factory=Counter)    # stream -> samples dropped as late
    joins: Counter = field(default_factory=Counter)   # stream -> runs it started while another stream ran
    # stream -> the spacing (s) of its last LAG_WINDOW in-order samples: a stream whose typical spacing is
    # below its min_interval (a face node faster than face_interval) breaks what steps rely on
    spacings: dict = field(default_factory=lambda: {n: deque(maxlen=LAG_WINDOW) for n in STREAMS})
    # data time (newest stamp held - step time) when a step went out: how long it waited, in stamps, so
    # independent of the machine's load (the first step's, and the recent ones')
    first_wait: float | None = None
    waits: deque = field(default_factory=lambda: deque(maxlen=LAG_WINDOW))


class _Stream:
    """One input stream's samples (sorted by stamp) and what the aligner knows of its timing."""

    def __init__(self):
        self.stamps, self.items = [], []
        self.runs = []            # [first stamp, join time] of each run of samples without a gap > gone_after
        self.last_seen = None     # newest stamp that arrived (late ones included)
        self.lags = deque(maxlen=LAG_WINDOW)   # other streams' newest stamp - this one's, at each arrival

    def cutoff(self, t) -> float:
        """Samples at or after this stamp belong to runs not yet joined at grid time t."""
        for first, join in self.runs:
            if join > t + 1e-9:
                return first
        return math.inf

    def usable(self, t) -> int:
        """Number of leading samples that may serve grid time t."""
        return bisect.bisect_left(self.stamps, self.cutoff(t))


@dataclass
class StreamAligner:
    period: float = PERIOD
    tolerance: float = TOLERANCE   # how far a sample may be from its grid point
    max_wait: float = MAX_WAIT     # how long (data time) to wait for a lagging stream beyond its measured lag
    hold: float = HOLD             # how long a sample stands in for missing newer ones
    min_interval: dict = field(default_factory=dict)   # stream -> smallest spacing of its stamps (s)
    jump_threshold: float = TIME_JUMP_S                 # further off than this is another time base
    max_lag: float = MAX_LAG       # the largest measured lag a stream is waited for
    gone_after: float = GONE_AFTER  # a stream silent this long (own stamps) is not waited for; it joins anew
    stats: AlignerStats = field(default_factory=AlignerStats)

    def __post_init__(self):
        if not (0 < self.period and 0 <= self.tolerance and self.max_wait >= self.tolerance
                and self.hold >= self.tolerance and self.max_lag >= 0 and self.gone_after >= self.hold
                and self.jump_threshold > max(self.max_wait, self.max_lag, self.hold)):
            raise ValueError("need period > 0, tolerance >= 0, max_wait >= tolerance, hold >= tolerance, "
                             "max_lag >= 0, gone_after >= hold and jump_threshold > max_wait, max_lag and hold")
        self.epoch = 0
        self.last_jump = ""      # describe_jump() text of the latest confirmed jump
        self._carry = []         # steps flushed from the old time base at a jump, not yet returned
        self._pending = []       # (stream, stamp, item) held as a possible new time base
        self._old_base_at = None  # newest held stamp when another stream last arrived in the old base
        self._clear()

    def _clear(self):
        self._streams = {n: _Stream() for n in STREAMS}
        self._next_index = None                                 # grid index of the next step
        self._newest_all = None

    def add(self, stream: str, stamp: float, item) -> str:
        """Add one sample; returns ADDED, LATE or DUPLICATE (dropped, counted), HELD (a possible
        time jump), BAD_STAMP (a held sample turned out to be one bad stamp; this one is ADDED)
        or JUMPED (a new time base confirmed: this and the held samples start it)."""
        if self._in_base(stamp):
            verdict = ADDED
            own = [p for p in self._pending if p[0] == stream]
            if own:
                # its own stream goes on in the old time base: its held stamps were bad ones
                self.stats.bad_stamps += len(own)
                self._pending = [p for p in self._pending if p[0] != stream]
                verdict = BAD_STAMP
            elif self._pending:
                self._old_base_at = self._pending[-1][1]      # another stream still runs in the old base
            added = self._insert(stream, stamp, item)
            return verdict if added == ADDED else added
        if self._pending and abs(stamp - self._pending[-1][1]) <= self.jump_threshold:
            self._pending.append((stream, stamp, item))
            if self._jump_confirmed():
                self._jump(stamp)
                for s, t, it in self._pending:
                    self._insert(s, t, it)
                self._pending, self._old_base_at = [], None
                return JUMPED
            self._drop_off_clock()
            return HELD
        self.stats.bad_stamps += len(self._pending)      # held samples no later one agreed with
        self._pending, self._old_base_at = [(stream, stamp, item)], None
        return HELD

    def _jump_confirmed(self) -> bool:
        """Whether the held samples (which agree with each other) start a new time base."""
        if len(self._pending) < 2:
            return False
        held = {p[0] for p in self._pending}
        live = {n for n, s in self._streams.items()
                if s.last_seen is not None and s.last_seen >= self._newest_all - self.gone_after}
        if live <= held:
            return True                # every stream that was producing jumped
        since = self._pending[0][1] if self._old_base_at is None else self._old_base_at
        return self._pending[-1][1] - since > self.gone_after    # the others stopped at the jump

    def _drop_off_clock(self):
        """Held samples older than gone_after (own stamps) while another stream goes on in the old base:
        their stream is on another clock. Dropped and counted, so holding stays bounded."""
        if self._old_base_at is None:
            return
        newest = self._pending[-1][1]
        for p in self._pending:
            if newest - p[1] > self.gone_after:
                self.stats.off_clock[p[0]] += 1
                self.stats.clock_offset[p[0]] = newest - self._newest_all
        self._pending = [p for p in self._pending if newest - p[1] <= self.gone_after]

    @property
    def held(self) -> int:
        """Samples held as a possible new time base."""
        return len(self._pending)

    def lag(self, stream: str) -> float:
        """The lag (s) the aligner allows `stream` beyond max_wait: its measured lag within [0, max_lag]."""
        lags = self._streams[stream].lags
        return min(max(max(lags), 0.0), self.max_lag) if lags else 0.0

    def measured_lag(self, stream: str) -> float | None:
        """How far (s) `stream`'s stamps trailed the other stream's newest at its recent arrivals
        (the largest of the last LAG_WINDOW; negative: it leads); None before both have produced."""
        lags = self._streams[stream].lags
        return max(lags) if lags else None

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

    def _arrived(self, stream, stamp):
        """What one arrival tells of the stream's timing: its lag, and whether it starts a run."""
        s = self._streams[stream]
        others = [o.last_seen for n, o in self._streams.items() if n != stream and o.last_seen is not None]
        if others:
            s.lags.append(max(others) - stamp)
        if s.last_seen is None or stamp - s.last_seen > self.gone_after:
            if s.last_seen is None and others and self._started_before_the_others(stream, stamp):
                s.runs.append([stamp, -math.inf])
            else:
                # the first stream of a time base is fused from its first stamp; any later one (or one
                # coming back) from max_wait after it: the steps before went out without it
                s.runs.append([stamp, stamp + self.max_wait if others else -math.inf])
                self.stats.joins[stream] += bool(others)
        s.last_seen = stamp if s.last_seen is None else max(s.last_seen, stamp)

    def _started_before_the_others(self, stream, stamp) -> bool:
        """A stream's first sample stamped before the first sample of every stream that has produced (whose
        samples only arrived first: a camera frame takes longer to process than a microphone chunk) started the
        time base, as it does in stamp order (an offline replay): it is fused from its first stamp, and the
        others become the ones that joined, from max_wait after their first stamps. Only the steps that went out
        before this sample arrived were decided otherwise."""
        others = [(n, o) for n, o in self._streams.items() if n != stream and o.last_seen is not None]
        if not all(len(o.runs) == 1 and o.runs[0][1] == -math.inf and o.runs[0][0] > stamp for _, o in others):
            return False
        for n, o in others:
            o.runs[0][1] = o.runs[0][0] + self.max_wait
            self.stats.joins[n] += 1
        return True

    def _insert(self, stream, stamp, item) -> str:
        self._arrived(stream, stamp)
        s = self._streams[stream]
        # too old for the next step: neither within tolerance of it nor a sample it may hold (a stream
        # that joins later is not waited for, and its first samples may come after steps they can hold)
        reach = max(self.tolerance, self.hold)
        if self._next_index is not None and stamp < self._next_index * self.period - reach - 1e-9:
            self.stats.late_dropped += 1
            self.stats.late[stream] += 1
            return LATE
        pos = bisect.bisect_left(s.stamps, stamp)
        if pos < len(s.stamps) and s.stamps[pos] == stamp:
            self.stats.duplicates += 1
            return DUPLICATE
        if pos and pos == len(s.stamps):
            self.stats.spacings[stream].append(stamp - s.stamps[pos - 1])
        s.stamps.insert(pos, stamp)
        s.items.insert(pos, item)
        self._newest_all = stamp if self._newest_all is None else max(self._newest_all, stamp)
        if self._next_index is None:
            # the grid point at or just before the first sample, so that it makes the first step
            # at once (the grid point after it would wait one frame); the next one if out of tolerance
            self._next_index = math.floor(round(stamp / self.period, 9))
            if stamp - self._next_index * self.period > self.tolerance + 1e-9:
                self._next_index += 1
        return ADDED

    def _covers(self, name, t) -> bool:
        s = self._streams[name]
        n = s.usable(t)
        return n > 0 and s.stamps[n - 1] >= t - self.min_interval.get(name, 0.0) / 2

    def _awaited(self, name, t) -> bool:
        """Whether step t must wait for stream `name` (which has no sample at or after it yet)."""
        s = self._streams[name]
        if s.last_seen is None:
            return False                  # produced nothing yet
        if t < s.runs[-1][1] - 1e-9:
            return False                  # its current run joins after t; earlier runs are over
        if t > s.last_seen + self.gone_after + max(self.tolerance, self.hold) + 1e-9:
            return False                  # gone: what it sends next starts a new run, joined after t
        others = [o.last_seen for n, o in self._streams.items() if n != name and o.last_seen is not None]
        # a lag not measured yet (it has not arrived since the other stream started) may be the largest
        lag = self.lag(name) if s.lags else self.max_lag
        return not others or max(others) < t + self.max_wait + lag

    def _decided(self, t) -> bool:
        for name in self._streams:
            if not self._covers(name, t) and self._awaited(name, t):
                return False
        # nothing to wait for, and data time has reached t (in a run that joins later, too: else two
        # streams that both come back would wait for each other forever)
        return any(s.stamps and s.stamps[-1] >= t - self.min_interval.get(n, 0.0) / 2
                   for n, s in self._streams.items())

    def ready(self, flush: bool = False) -> list[GridStep]:
        """Grid steps that can be decided now (all remaining ones if `flush`)."""
        out, self._carry = self._carry, []
        if self._next_index is None:
            return out
        while True:
            t = round(self._next_index * self.period, 9)
            if not (self._decided(t) or (flush and t <= self._newest_all)):
                break
            face, audio = self._nearest("face", t), self._nearest("audio", t)
            if face is None and audio is None:
                # Nothing within reach of t in either stream (both down, or a jump in bag time):
                # no step, and skip straight to the first grid point the data can reach,
                # instead of emitting a burst of empty steps across the gap.
                reach = self._reach(t)
                if reach is None:
                    break
                if not flush and any(s.last_seen is not None and s.last_seen < t for s in self._streams.values()):
                    # a stream that went quiet may come back with samples up to max_wait older than the
                    # newest: skip only grid points it can no longer claim (else they are dropped as late)
                    bound = self._newest_all - self.max_wait
                    if bound < t - 1e-9:
                        break
                    reach = min(reach, bound)
                self._next_index = max(self._next_index + 1, math.ceil(round(reach / self.period, 9)))
                self._prune(round(self._next_index * self.period, 9) - self.period)
                continue
            out.append(GridStep(t, face, audio, self.epoch))
            self.stats.steps += 1
            if not flush:
                wait = max(0.0, self._newest_all - t)
                self.stats.waits.append(wait)
                if self.stats.first_wait is None:
                    self.stats.first_wait = wait
            self._next_index += 1
            self._prune(t)
        return out

    def _reach(self, t):
        """The earliest time after t that a sample now held can serve (None: none can)."""
        reach = []
        for s in self._streams.values():
            reach += [join for _, join in s.runs if join > t + 1e-9]
            pos = bisect.bisect_right(s.stamps, t)
            if pos < len(s.stamps):
                first = s.stamps[pos]
                join = next((j for f, j in reversed(s.runs) if f <= first), -math.inf)
                reach.append(max(first - self.tolerance, join))
        return min(reach) if reach else None

    def _nearest(self, stream, t):
        s = self._streams[stream]
        stamps, items, end = s.stamps, s.items, s.usable(t)
        pos = bisect.bisect_left(stamps, t, 0, end)
        best = None
        for i in (pos - 1, pos):
            if 0 <= i < end and abs(stamps[i] - t) <= self.tolerance + 1e-9:
                # Ties go to the earlier sample, so results never depend on what arrives later.
                if best is None or abs(stamps[i] - t) < abs(stamps[best] - t) - 1e-12:
                    best = i
        if best is None and pos > 0 and t - stamps[pos - 1] <= self.hold + 1e-9:
            best = pos - 1   # zero-order hold of the latest earlier sample
        return None if best is None else items[best]

    def _prune(self, t):
        horizon = t + self.period - max(self.tolerance, self.hold)
        for s in self._streams.values():
            keep = bisect.bisect_left(s.stamps, horizon - 1e-9)
            # keep one older sample: it can still be nearest to the next grid point
            keep = max(0, keep - 1)
            del s.stamps[:keep], s.items[:keep]
            # runs joined by now are only needed as the current one
            s.runs = [r for r in s.runs[:-1] if r[1] > t + 1e-9] + s.runs[-1:]
