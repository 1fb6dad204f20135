"""Latency of a live run as a robot lives it: how long after the first camera image the first estimate
with a face arrives (start-up), and the image-to-affect latency after the first second (steady state),
reported apart so that a start-up effect is never quoted as "the latency".

Pure (numpy only): eval/live.py measures, the report and the console tools print what `summary` says."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STARTUP_S = 1.0   # the first second after the first camera image (by header stamps): start-up, reported apart


@dataclass
class LiveLatency:
    """Per AffectArray with a face: `since_first_s` (its header stamp - the first camera image's stamp)
    and `latency_s` (its arrival - the publication of the camera image it was computed from, wall clock);
    `first_estimate_s`: arrival of the first AffectArray with a face - publication of the first camera
    image (None: no estimate with a face arrived)."""

    since_first_s: list = field(default_factory=list)
    latency_s: list = field(default_factory=list)
    first_estimate_s: float | None = None

    def __len__(self) -> int:
        return len(self.latency_s)

    def startup_ms(self) -> np.ndarray:
        """Latencies (ms) of the estimates of the first second."""
        return self._ms(np.asarray(self.since_first_s, np.float64) < STARTUP_S)

    def steady_ms(self) -> np.ndarray:
        """Latencies (ms) of the estimates after the first second: the steady state."""
        return self._ms(np.asarray(self.since_first_s, np.float64) >= STARTUP_S)

    def _ms(self, mask) -> np.ndarray:
        return np.asarray(self.latency_s, np.float64).reshape(-1)[np.asarray(mask, bool).reshape(-1)] * 1000

    def summary(self) -> dict:
        """What metrics.json and the console summaries say (ms, one decimal; None: nothing to measure)."""
        return {"first_estimate_ms": None if self.first_estimate_s is None else round(self.first_estimate_s * 1000, 1),
                "steady_state": percentiles(self.steady_ms()), "first_second": percentiles(self.startup_ms()),
                "steady_after_s": STARTUP_S}


def percentiles(ms) -> dict:
    ms = np.asarray(ms, np.float64)
    if not ms.size:
        return {"p50": None, "p95": None, "n": 0}
    return {"p50": round(float(np.percentile(ms, 50)), 1), "p95": round(float(np.percentile(ms, 95)), 1),
            "n": int(ms.size)}


def merged(parts) -> LiveLatency:
    """Several sessions' measurements as one (the first estimate: the slowest of them)."""
    parts = [p for p in parts if p is not None]
    firsts = [p.first_estimate_s for p in parts if p.first_estimate_s is not None]
    return LiveLatency([t for p in parts for t in p.since_first_s], [x for p in parts for x in p.latency_s],
                       max(firsts) if firsts else None)


def _ms_text(x) -> str:
    return "-" if x is None else f"{x:.1f} ms"


def describe(s: dict) -> str:
    """One line for people, from summary()'s dict."""
    steady, early = s["steady_state"], s["first_second"]
    first = ("no estimate with a face arrived" if s["first_estimate_ms"] is None else
             f"first estimate with a face {s['first_estimate_ms']:.1f} ms after the first camera image")
    line = (f"{first}; steady-state image-to-affect latency (after the first {s['steady_after_s']:g} s) "
            + (f"p50 {_ms_text(steady['p50'])}, p95 {_ms_text(steady['p95'])} over {steady['n']} messages"
               if steady["n"] else "not measured (no estimate with a face after the first second)"))
    if early["n"]:
        line += (f"; the first second (start-up): p50 {_ms_text(early['p50'])}, p95 {_ms_text(early['p95'])} "
                 f"over {early['n']}")
    return line
