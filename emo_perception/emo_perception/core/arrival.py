"""Frames that went missing before a node: the rate the stamps show against the rate that arrives.

A camera stamps its frames one frame period apart. Frames lost on the way (a frame larger than the
transport holds, a full DDS queue, a slow publisher) leave gaps in the stamps that are whole multiples
of the period. Over the last `window_s` of arrivals, per stream (an image's frame_id), the period is the
median of the steps near the smallest typical step (a low percentile, so that losses of up to ~80 %
still leave enough single steps to read it); the frames sent are the stamps' span over the period,
and those of them that did not arrive are missing. The span, not each step, is rounded: a publisher
that stamps late and then early (a loaded timer) loses nothing. Steps backwards or longer than
MAX_GAP_S (a pause, a time jump) count nothing.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

MAX_GAP_S = 1.0          # a longer step between stamps is a pause or a jump, not lost frames
PERIOD_PERCENTILE = 10   # the smallest typical step: where single periods are among the steps
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


def _estimate(stamps: np.ndarray, arrived_hz: float) -> ArrivalStats | None:
    steps = np.diff(stamps)
    steps = steps[(steps > 0) & (steps <= MAX_GAP_S)]
    if len(steps) < MIN_STEPS:
        return None
    low = np.percentile(steps, PERIOD_PERCENTILE)
    period = float(np.median(steps[(steps >= 0.5 * low) & (steps <= 1.5 * low)]))
    missing = max(0, int(np.rint(steps.sum() / period)) - len(steps))
    return ArrivalStats(arrived_hz, 1.0 / period, missing, len(stamps))
