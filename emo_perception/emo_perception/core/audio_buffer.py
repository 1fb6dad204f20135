"""Stamped audio buffer that yields fixed analysis windows every hop, on the audio's own clock.

Audio time follows the chunk stamps (ChunkClock): sample i of a stream lies at origin + i / rate,
and every chunk's stamp says where its first sample is. Stamps are never early but may be late
(drivers that stamp on arrival: scheduling jitter), so the origin is the earliest one the stamps
imply; it moves later only when every one of the last JITTER_CHUNKS chunks says so (clock drift).
A chunk that lies somewhere else than the samples so far imply is held until the next chunk says
which of them is right:
- samples are missing before it (a chunk lost in transport or dropped as malformed): the next
  chunk lies where the held one says. Up to `tolerance_s` of missing samples are filled with
  silence (zeros); after a longer hole no window spans it (one would mix unrelated audio): the
  windows start again one window after it, on the same hop grid. Either way every later sample
  keeps its time. Counted as gaps;
- its stamp was bad (stamped 0, a day ahead, a late spike): the next chunk lies where the samples
  so far imply. The held chunk's samples are put where they belong if they fit the room it
  left (nothing is lost), else dropped. Counted as a bad stamp;
- the time base changed (a looping bag, a clock step: more than `jump_threshold_s` off): the next
  chunk continues the held one; the stream restarts there;
- a chunk stamped no later than the previous one (out of order, duplicate) is dropped and counted.
A hole is "samples missing" only when it is longer than MIN_GAP_S and than JITTER_FACTOR times
the spread of the recent stamps' lateness: below that it cannot be told from jitter. The first
JITTER_MIN chunks of a stream, whose jitter is not known yet, fill nothing below `tolerance_s`.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .audio_frontend import SAMPLE_RATE
from .stream_time import TIME_JUMP_S, describe_jump


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
    gaps: int = 0             # holes of missing samples (filled or restarting the stream)
    gaps_filled: int = 0      # of those, filled with silence
    filled_samples: int = 0   # zeros filled in, at the clock's rate
    dropped_chunks: int = 0   # out of order / duplicate
    bad_stamps: int = 0       # chunks whose stamp disagreed with the chunks around them
    time_jumps: int = 0
    windows: int = 0


MIN_GAP_S = 0.02       # a shorter hole is taken as stamp jitter (half the fusion's 40 ms grid step)
JITTER_CHUNKS = 32     # recent chunks whose lateness shows the stamps' jitter (and drift)
JITTER_MIN = 8         # chunks of a stream before its jitter is known (and holes below tolerance filled)
JITTER_FACTOR = 2.0    # a hole must exceed this many times the spread of the recent lateness
REBASE_MIN_S = 0.001   # every recent chunk at least this late: the origin follows the stamps (drift)

# ChunkClock.admit steps: what to do with samples, and what happened
NEW, APPEND, FILL, SKIP = "new", "append", "fill", "skip"   # start a stream at / add a chunk / add zeros / a hole
HELD, STALE, JUMPED, BAD_STAMP, GAP = "held", "stale", "jumped", "bad_stamp", "gap"


@dataclass
class Chunk:
    start: float        # where its stamp puts its first sample (s)
    n: int              # samples, at the clock's rate
    payload: object = None


@dataclass
class Step:
    kind: str           # NEW, APPEND, FILL, SKIP (samples) or HELD, STALE, JUMPED, BAD_STAMP, GAP (events)
    chunk: Chunk | None = None
    fill: int = 0       # FILL: zeros to add; SKIP: samples missing; GAP: the zeros it fills (0: skipped)
    text: str = ""      # JUMPED, BAD_STAMP, GAP: one log line


class ChunkClock:
    """Where each chunk's samples lie on the stream's clock (module docstring); admit() decides, the
    caller moves the samples. `rate` is the chunks' own rate (before any resampling)."""

    def __init__(self, rate: int, tolerance_s: float = 0.15, jump_threshold_s: float = TIME_JUMP_S):
        self.rate, self.tolerance_s, self.jump_s = rate, tolerance_s, jump_threshold_s
        self.stats = BufferStats()
        self.held = None          # (Chunk, "gap" | "jump") waiting for the next chunk
        self.restart()

    def restart(self):
        """Forget the stream: the next chunk starts a new one at its own stamp."""
        self.origin = None        # time of stream sample 0
        self.received = 0         # stream samples so far, fill included
        self.last_start = None    # stamp of the latest chunk placed
        self._late = deque(maxlen=JITTER_CHUNKS)   # lateness (s) of recent chunks against the origin

    def expected(self) -> float:
        """Where the next chunk's first sample belongs."""
        return self.origin + self.received / self.rate

    def threshold(self) -> float:
        """Lateness below which a chunk is taken as jittered, not as following missing samples."""
        if len(self._late) < JITTER_MIN:
            return self.tolerance_s
        return min(self.tolerance_s, max(MIN_GAP_S, JITTER_FACTOR * (max(self._late) - min(self._late))))

    def admit(self, start: float, n: int, payload=None) -> list[Step]:
        """A chunk of `n` samples whose stamp puts its first sample at `start` -> the steps to take,
        in order (see the module docstring)."""
        self.stats.chunks += 1
        chunk, out = Chunk(start, n, payload), []
        if self.held is None:
            self._place(chunk, out)
        else:
            held, kind = self.held
            self.held = None
            self._resolve(held, kind, chunk, out)
        return out

    # -- placing one chunk against the stream so far -------------------------------------------
    def _place(self, c: Chunk, out: list):
        if self.origin is None:
            self._new(c, out)
            return
        late = c.start - self.expected()
        if c.start < self.last_start - self.jump_s or late > self.jump_s:
            self.held = (c, "jump")            # a new time base, or one bad stamp: the next chunk tells
            out.append(Step(HELD, c))
        elif c.start <= self.last_start:
            self.stats.dropped_chunks += 1
            out.append(Step(STALE, c))
        elif late < self.threshold():
            self._append(c, late, out)
        else:
            self.held = (c, "gap")             # samples missing before it, or a late stamp
            out.append(Step(HELD, c))

    def _new(self, c: Chunk, out: list):
        self.restart()
        self.origin, self.last_start, self.received = c.start, c.start, c.n
        out.append(Step(NEW, c))

    def _append(self, c: Chunk, late: float, out: list):
        """Add a chunk that continues the stream; `late`: how much later than expected its stamp is."""
        if late < 0:
            # earlier than the samples so far imply: the origin was late (stamps are never early)
            self.origin += late
            self._late = deque((x - late for x in self._late), maxlen=JITTER_CHUNKS)
            late = 0.0
        self._late.append(late)
        if len(self._late) == JITTER_CHUNKS and min(self._late) > REBASE_MIN_S:
            # every recent chunk is later than the origin says: follow the stamps (clock drift)
            shift = min(self._late)
            self.origin += shift
            self._late = deque((x - shift for x in self._late), maxlen=JITTER_CHUNKS)
        self.received += c.n
        self.last_start = c.start
        out.append(Step(APPEND, c))

    def _put_in_place(self, c: Chunk, out: list):
        """A chunk whose stamp was wrong but whose samples fit the room it left: add them there."""
        c.start = self.expected()
        self.received += c.n
        self.last_start = c.start
        out.append(Step(APPEND, c))

    # -- deciding on a held chunk with the next one -------------------------------------------
    def _resolve(self, h: Chunk, kind: str, c: Chunk, out: list):
        expected = self.expected()
        h_late = h.start - expected
        c_late = c.start - expected - h.n / self.rate     # the next chunk's lateness with the held one in place
        thr = self.threshold()
        if self.last_start - self.jump_s <= c.start <= self.last_start:
            self.stats.dropped_chunks += 1                # stale in the old time base: the held one waits on
            self.held = (h, kind)
            out.append(Step(STALE, c))
            return
        if kind == "jump":
            if abs(c_late) < thr:                          # the stream went on with room for the held chunk
                self._bad_stamp(h, expected, "its samples were put where they belong", out)
                self._put_in_place(h, out)
            elif 0.0 < c.start - h.start <= self.jump_s:   # the next chunk continues the held one
                self.stats.time_jumps += 1
                out.append(Step(JUMPED, h, text=describe_jump(self.last_start, h.start)))
                self._new(h, out)
            else:
                self._bad_stamp(h, expected, "dropped", out)
            self._place(c, out)
            return
        # kind "gap": the held chunk came later than the samples so far imply
        if self.last_start < c.start < h.start and c.start - expected < thr:
            self._append(c, c.start - expected, out)      # the next chunk belongs before the held one
            self._place(h, out)
            return
        if c.start == h.start:
            self.stats.dropped_chunks += 1                # a duplicate of the held one: it waits on
            self.held = (h, kind)
            out.append(Step(STALE, c))
            return
        missing = min(h_late, c_late) if c_late > -thr else h_late
        if missing < thr:                                  # the held stamp was late, no samples missing
            if h_late > self.tolerance_s:
                self._bad_stamp(h, expected, "its samples were put where they belong", out)
                self._put_in_place(h, out)
            else:
                self._append(h, h_late, out)
        elif missing <= self.tolerance_s:
            fill = int(round(missing * self.rate))
            self.stats.gaps += 1
            self.stats.gaps_filled += 1
            self.stats.filled_samples += fill
            out.append(Step(GAP, h, fill, f"{1000 * missing:.0f} ms of samples missing before {h.start:.3f} s "
                                         "(a chunk lost or dropped): filled with silence, later samples keep their "
                                         "time"))
            out.append(Step(FILL, fill=fill))
            self.received += fill
            self._append(h, h_late - fill / self.rate, out)
        else:
            skip = int(round(missing * self.rate))
            self.stats.gaps += 1
            out.append(Step(GAP, h, text=f"{1000 * missing:.0f} ms of samples missing before {h.start:.3f} s (more "
                                         f"than gap_tolerance {self.tolerance_s:.3f} s): no window spans the hole"))
            out.append(Step(SKIP, fill=skip))
            self.received += skip
            self._append(h, h_late - skip / self.rate, out)
        self._place(c, out)

    def _bad_stamp(self, h: Chunk, expected: float, what: str, out: list):
        self.stats.bad_stamps += 1
        out.append(Step(BAD_STAMP, h, text=f"chunk stamped {h.start:.3f} s disagrees with the chunks around it "
                                           f"(its samples belong at {expected:.3f} s): one bad stamp; {what}"))


class AudioWindower:
    """Samples of one stream -> a window every hop, each stamped at its end on the stream's clock.
    The clock (ChunkClock) decides where chunks go; push() applies its steps (the audio pipeline
    applies them itself, to resample and feed the VAD on the way)."""

    def __init__(self, window_s: float = WINDOW_S, hop_s: float = 0.04, tolerance_s: float = 0.15,
                 sample_rate: int = SAMPLE_RATE, clock: ChunkClock | None = None,
                 jump_threshold_s: float = TIME_JUMP_S):
        if not (0 < hop_s <= window_s):
            raise ValueError(f"need 0 < hop_s <= window_s, got hop_s={hop_s}, window_s={window_s}")
        self.rate = sample_rate
        self.window = int(round(window_s * sample_rate))
        self.hop = int(round(hop_s * sample_rate))
        # the clock may run at another rate (the input's, before resampling): both count from one origin
        self.clock = clock or ChunkClock(sample_rate, tolerance_s, jump_threshold_s)
        self.stats = self.clock.stats
        self.restart()

    def restart(self):
        """A new stream starts at the clock's origin: forget the samples."""
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0      # stream index of _buf[0]
        self._received = 0       # stream samples received so far
        self._next_stop = self.window   # stream index just after the next window to emit
        self._last_end = -np.inf

    def _time(self, index: int) -> float:
        return self.clock.origin + index / self.rate

    def append(self, samples: np.ndarray) -> list[AudioWindow]:
        """Add the samples that come next in the stream (a chunk, or fill); return the windows now complete."""
        self._buf = np.concatenate([self._buf, samples])
        self._received += samples.size
        return self._drain()

    def skip(self, n: int):
        """`n` samples are missing: no window may span them; the next one ends a window after them,
        on the hop grid (later windows keep their times)."""
        self._received += n
        self._buf, self._buf_start = np.zeros(0, np.float32), self._received
        first = self._received + self.window
        if self._next_stop < first:
            self._next_stop += -(-(first - self._next_stop) // self.hop) * self.hop

    def push(self, samples: np.ndarray, stamp: float) -> list[AudioWindow]:
        """Admit and append a chunk whose first sample is at `stamp` (s), with the clock's rules.

        Raises ValueError for a non-mono or non-finite chunk (the buffer is left unchanged).
        """
        samples = as_mono(samples)
        if samples.size == 0:
            return []
        out = []
        for step in self.clock.admit(stamp, samples.size, samples):
            if step.kind == NEW:
                self.restart()
            if step.kind in (NEW, APPEND):
                out += self.append(step.chunk.payload)
            elif step.kind == FILL:
                out += self.append(np.zeros(step.fill, np.float32))
            elif step.kind == SKIP:
                self.skip(step.fill)
        return out

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
