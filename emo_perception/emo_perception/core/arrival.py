"""Frames that went missing before a node: the rate the stamps show against the rate that arrives.

A camera stamps its frames one frame period apart. Frames lost on the way (a frame larger than the
transport holds, a full DDS queue, a slow publisher) leave gaps in the stamps that are whole multiples
of the period. Over the last `window_s` of arrivals, per stream (an image's frame_id): the period is the
longest step of which nearly all steps (FIT) are whole multiples, within TOLERANCE of a period (a step
of 2P fails where single steps exist, P/2 would fit but is shorter; the tolerance is also absolute, so
that a node taking every 4th or 5th frame does not read as a camera at a quarter of the rate), refined by
least squares over all
steps; the frames sent are the stamps' span over the period, and those of them that did not arrive
are missing. Losses up to ~75 % are read within a few frames with stamp jitter up to 3 ms at 30 Hz
(test_arrival.py); stamps more irregular than that give no estimate rather than a wrong one. Steps
backwards or longer than MAX_GAP_S (a pause, a time jump) count nothing.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

MAX_GAP_S = 1.0          # a longer step between stamps is a pause or a jump, not lost frames
FIT = 0.9                # share of the steps that must be whole multiples of the period
TOLERANCE = 0.25         # how far from a whole multiple (in periods) a step may be ...
TOLERANCE_S = 0.010      # ... and in seconds: else a candidate of 4 periods would take steps of 3 and 5
MIN_STEPS = 5            # fewer steps than this in the window: no estimate


@dataclass
class ArrivalStats:
    arrived_hz: float       # frames that arrived, per second of wall time
    stamped_hz: float       # the stream's own rate by its stamps (1 / period)
    missing: int            # frames the stamps show were sent but did not arrive, in the window
    arrived: int

    @property
    def missing_fraction(self) -> float:
        return self.missing / (self.missing + self.arrived) if self.missing + self.arrived else 0.0


class ArrivalMeter:
    def __init__(self, window_s: float = 5.0):
        self.window_s = window_s
        self._streams: dict[str, deque] = {}   # stream -> (arrival time, stamp), oldest first

    def add(self, stream: str, stamp: float, now: float):
        q = self._streams.setdefault(stream, deque())
        q.append((now, stamp))
        while now - q[0][0] > self.window_s:
            q.popleft()

    def stats(self, now: float) -> dict[str, ArrivalStats | None]:
        """Per stream heard from in the last window (None: too few frames to tell); streams silent
        that long are forgotten."""
        out = {}
        for stream in list(self._streams):
            q = self._streams[stream]
            while q and now - q[0][0] > self.window_s:
                q.popleft()
            if not q:
                del self._streams[stream]
                continue
            out[stream] = _estimate(np.array([t for _, t in q]), len(q) / self.window_s)
        return out


def worst_stream(stats: dict) -> tuple[str, ArrivalStats] | None:
    """(stream, stats) of the stream losing the largest share of its frames; None without an estimate."""
    known = [(s.missing_fraction, name, s) for name, s in stats.items() if s is not None]
    return max(known, key=lambda k: k[0])[1:] if known else None


def missing_warning(stream: str, s: ArrivalStats, processing_s: float | None, queue_depth: int) -> str:
    """The diagnostics line for frames that never reach a node which processes the newest of a
    `queue_depth`-deep input queue, taking `processing_s` a frame. While it works, the frames that come
    replace each other in that queue: most would have been skipped anyway, but a transport loss looks
    the same, so the line says which the figures point to."""
    if processing_s is not None and processing_s * s.stamped_hz > queue_depth:
        why = (f"this node works {processing_s * 1000:.0f} ms a frame, so most replace each other in its "
               f"{queue_depth}-frame queue (they would have been skipped); a lower processing_rate or a faster "
               "backend shows whether the transport loses some too")
    else:
        why = "lost on the way: frames larger than the Fast DDS profile's segment? (docs/robot.md)"
    return (f"{100 * s.missing_fraction:.0f} % of the frames of '{stream}' never reach this node: its stamps show "
            f"{s.stamped_hz:.1f} Hz, {s.arrived_hz:.1f} Hz arrive; {why}")


def _estimate(stamps: np.ndarray, arrived_hz: float) -> ArrivalStats | None:
    steps = np.diff(stamps)
    steps = steps[(steps > 0) & (steps <= MAX_GAP_S)]
    if len(steps) < MIN_STEPS:
        return None
    period = _period(steps)
    if period is None:
        return None
    missing = max(0, int(np.rint(steps.sum() / period)) - len(steps))
    return ArrivalStats(arrived_hz, 1.0 / period, missing, len(stamps))


def _period(steps: np.ndarray) -> float | None:
    candidates = np.sort(steps[steps <= np.median(steps)])[::-1]          # longest first
    ratio = steps[None, :] / candidates[:, None]                            # (candidates, steps)
    off = np.abs(ratio - np.maximum(1, np.rint(ratio)))                    # in candidate periods
    fits = (off <= np.minimum(TOLERANCE, TOLERANCE_S / candidates)[:, None]).mean(axis=1) >= FIT
    if not fits.any():
        return None
    multiples = np.maximum(1, np.rint(steps / candidates[np.argmax(fits)]))
    return float(steps.sum() / multiples.sum())
