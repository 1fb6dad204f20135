"""Stream time is data, and it jumps: a looping bag, simulated time, a clock step, one bad stamp.

Every stateful stage (tracker, audio windower, aligner, fusion state) asks the same question of
each new stamp: is it the next one, a little older (out of order: drop it), or so far off that
the stream's time base changed (reset what that invalidates, log it once, go on)? One rule for
all of them, so that no single stamp can decide every later drop. A stamp that would start a new
time base is held, not trusted, until the stream's next stamp confirms it (it continues the held
one: a new time base) or refutes it (it continues the old one: the held stamp was one bad stamp,
and costs only itself). The fusion's aligner (alignment.py) applies the same rule across streams.

Where stamps come from (StampSource): the message headers, or, for drivers that do not stamp, the
time each message arrived. A stream whose header stamps do not move is found and said once.
"""
from __future__ import annotations

from dataclasses import dataclass

TIME_JUMP_S = 1.0   # default: further than this from the previous stamp is a new time base

# verdicts of StampOrder.classify (and of admit, which adds HELD)
FIRST, NEXT, OLDER, JUMP_BACK, JUMP_FORWARD = "first", "next", "older", "jump_back", "jump_forward"
HELD = "held"
JUMPS = (JUMP_BACK, JUMP_FORWARD)


@dataclass
class StampOrder:
    """Classifies each stamp against the last accepted one of the same stream."""

    threshold_s: float = TIME_JUMP_S
    last: float | None = None
    held: float | None = None        # a stamp out of the time base, waiting for the next one (admit)
    bad_stamp: float | None = None   # the held stamp the latest admit() refuted as one bad stamp
    jump: str | None = None          # describe_jump() of the time jump the latest admit() confirmed

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

    def admit(self, stamp: float) -> str:
        """classify() with the hold rule, accepting what it admits. FIRST/NEXT: accepted. OLDER: drop
        it. HELD: out of the time base; nothing is accepted until the next stamp. JUMP_BACK/
        JUMP_FORWARD: this stamp continues the held one (later, within the threshold): the time base
        changed (`jump` says how) and this stamp is accepted. A held stamp that the next one does
        not continue was one bad stamp: `bad_stamp` names it, and the next stamp is classified
        against the old time base as if the held one had never come."""
        held, self.held, self.bad_stamp, self.jump = self.held, None, None, None
        if held is not None:
            if 0.0 < stamp - held <= self.threshold_s:
                verdict = JUMP_BACK if held < self.last else JUMP_FORWARD
                self.jump = describe_jump(self.last, held)
                self.accept(stamp)
                return verdict
            self.bad_stamp = held
        verdict = self.classify(stamp)
        if verdict in JUMPS:
            self.held = stamp
            return HELD
        if verdict != OLDER:
            self.accept(stamp)
        return verdict


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


# ------------------------------------------------------------------------------- stamp sources
STAMP_SOURCES = ("header", "arrival")
# This many messages in a row with one and the same header stamp (0: never set; or a driver that
# stamps once) mean the source does not stamp: two can be a duplicate, three are not a clock.
UNSTAMPED_AFTER = 3
UNSTAMPED, STAMPED = "unstamped", "stamped"   # events of StampSource.place


class StampSource:
    """The time a stream's messages are placed at: their header stamp ('header', the default) or the
    time they arrived ('arrival': the node's clock when the message came in; offline, the bag's
    receive time). Arrival time is later than the capture by the driver's buffering and the
    transport, and jitters with the machine's load: a fallback for drivers that do not stamp.

    With 'header', a stream whose stamps do not move is unstamped: from the UNSTAMPED_AFTER-th
    message in a row with one stamp on, place() returns None (drop it: its time is unknown, and
    it must not reset anyone's time base) until the stamps move again."""

    def __init__(self, source: str = "header", repeats: int = UNSTAMPED_AFTER):
        if source not in STAMP_SOURCES:
            raise ValueError(f"stamp_source '{source}' unknown; allowed: {', '.join(STAMP_SOURCES)}")
        self.source, self.repeats = source, repeats
        self.unstamped = False       # the header stamps stopped moving: messages are dropped
        self.constant = None         # the stamp they stopped at
        self._last, self._run = None, 0

    def place(self, header: float, received: float | None = None) -> tuple[float | None, str | None]:
        """(the stamp to use, or None: drop the message; the event: UNSTAMPED when the stream has just
        been found unstamped, STAMPED when its stamps move again, else None)."""
        if self.source == "arrival":
            if received is None:
                raise ValueError("stamp_source 'arrival' needs the time each message arrived")
            return received, None
        self._run = self._run + 1 if header == self._last else 1
        self._last = header
        if self._run >= self.repeats:
            event = None if self.unstamped else UNSTAMPED
            self.unstamped, self.constant = True, header
            return None, event
        if self.unstamped:
            self.unstamped = False
            return header, STAMPED
        return header, None
