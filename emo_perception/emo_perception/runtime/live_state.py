"""What the live view shows, kept without ROS: each person's valence/arousal over the last
`window_s` of data time, their current point and modalities, and the event markers."""
from __future__ import annotations

from collections import deque


class LiveState:
    def __init__(self, window_s: float = 60.0):
        self.window_s = window_s
        self.people = {}          # track id -> deque of (t, valence, arousal, face, voice)
        self.events = deque()     # (t, label)
        self.now = None

    def add_affect(self, t: float, people):
        """people: (track_id, valence, arousal, face, voice) at data time t."""
        if self.now is not None and t < self.now - self.window_s:   # the data's clock went back: start over
            self.people.clear()
            self.events.clear()
        self.now = t if self.now is None else max(self.now, t)
        for track, v, a, face, voice in people:
            self.people.setdefault(track or "voice only", deque()).append((t, v, a, face, voice))
        self._trim()

    def add_event(self, t: float, label: str):
        self.events.append((t, label))
        self.now = t if self.now is None else max(self.now, t)
        self._trim()

    def _trim(self):
        horizon = self.now - self.window_s
        for track in list(self.people):
            q = self.people[track]
            while q and q[0][0] < horizon:
                q.popleft()
            if not q:
                del self.people[track]
        while self.events and self.events[0][0] < horizon:
            self.events.popleft()

    def snapshot(self) -> dict:
        """JSON for the page: times relative to now (s, <= 0)."""
        now = self.now or 0.0
        out = {"window_s": self.window_s, "people": {}, "events": [[round(t - now, 3), lbl] for t, lbl in self.events]}
        for track, q in self.people.items():
            last = q[-1]
            out["people"][track] = {
                "t": [round(s[0] - now, 3) for s in q], "valence": [round(s[1], 4) for s in q],
                "arousal": [round(s[2], 4) for s in q], "current": [round(last[1], 4), round(last[2], 4)],
                "face": bool(last[3]), "voice": bool(last[4]), "age_s": round(now - last[0], 3)}
        return out
