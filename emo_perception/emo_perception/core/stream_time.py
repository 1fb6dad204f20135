"""Stream time is data, and it jumps: a looping bag, simulated time, a clock step, one bad stamp.

Every stateful stage (tracker, audio windower, aligner, fusion state) asks the same question of
each new stamp: is it the next one, a little older (out of order: drop it), or so far off that
the stream's time base changed (reset what that invalidates, log it once, go on)? One rule for
all of them, so that no single stamp can decide every later drop.
"""
from __future__ import annotations

from dataclasses import dataclass

TIME_JUMP_S = 1.0   # default: further than this from the previous stamp is a new time base

# verdicts of StampOrder.classify
FIRST, NEXT, OLDER, JUMP_BACK, JUMP_FORWARD = "first", "next", "older", "jump_back", "jump_forward"


@dataclass
class StampOrder:
    """Classifies each stamp against the last accepted one of the same stream."""

    threshold_s: float = TIME_JUMP_S
    last: float | None = None

    def classify(self, stamp: float) -> str:
        if self.last is None:
            return FIRST
        delta = stamp - self.last
        if delta < -self.threshold_s:
            return JUMP_BACK
        if delta < 0:
            return OLDER
        if delta > self.threshold_s:
            return JUMP_FORWARD
        return NEXT

    def accept(self, stamp: float):
        self.last = stamp


def describe_jump(old: float, new: float) -> str:
    """'jumped back 12.300 s (from 112.300 to 100.000)': the one log line for a time jump."""
    direction = "back" if new < old else "forward"
    return f"stamps jumped {direction} {abs(new - old):.3f} s (from {old:.3f} to {new:.3f})"


def drop_stale(states: dict, now: float, max_age_s: float, last_seen) -> list:
    """Remove entries last seen more than `max_age_s` before `now`; returns their keys.

    `last_seen(value)` gives an entry's time. Shared by the tracker and the fusion state, which
    all forget a person the same way."""
    stale = [k for k, v in states.items() if now - last_seen(v) > max_age_s]
    for k in stale:
        del states[k]
    return stale
