"""What the live view shows, kept without ROS: each person's valence/arousal over the last
`window_s` of data time, their current point, confidence and modalities, the participant a track was
assigned (an event `participant:P03=f1`, as emo_record reads it) and the event markers. An event that
arrives before any affect is placed at the first affect's time (there is no data time before it)."""
from __future__ import annotations

from collections import deque

from ..core.speaker import track_name
from .session_log import parse_participant


class LiveState:
    def __init__(self, window_s: float = 60.0):
        self.window_s = window_s
        self.people = {}          # track name -> deque of (t, valence, arousal, confidence, face, voice)
        self.events = deque()     # (t, label)
        self.early_events = []    # labels that came before any affect: placed at the first affect's time
        self.participants = {}    # track name -> participant id
        self.now = None

    def add_affect(self, t: float, people):
        """people: (track_id, valence, arousal, confidence, face, voice) at data time t."""
        if self.now is not None and t < self.now - self.window_s:   # the data's clock went back: start over
            self.people.clear()
            self.events.clear()
        self.now = t if self.now is None else max(self.now, t)
        for label in self.early_events:
            self.events.append((t, label))
        self.early_events = []
        for track, v, a, c, face, voice in people:
            self.people.setdefault(track_name(track), deque()).append((t, v, a, c, face, voice))
        self._trim()

    def add_event(self, label: str):
        """An event that arrived now: marked at the newest data time (or the first, if none came yet)."""
        try:
            assignment = parse_participant(label)
        except ValueError:
            assignment = None        # shown as it is; emo_record says what is wrong with it
        if assignment:
            self.participants[assignment[1]] = assignment[0]
        if self.now is None:
            self.early_events.append(label)
        else:
            self.events.append((self.now, label))

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
        out = {"window_s": self.window_s, "people": {}, "events": [[round(t - now, 3), lbl] for t, lbl in self.events]
               + [[0.0, lbl] for lbl in self.early_events]}
        for track, q in self.people.items():
            last = q[-1]
            out["people"][track] = {
                "t": [round(s[0] - now, 3) for s in q], "valence": [round(s[1], 4) for s in q],
                "arousal": [round(s[2], 4) for s in q], "current": [round(last[1], 4), round(last[2], 4)],
                "confidence": round(last[3], 3), "face": bool(last[4]), "voice": bool(last[5]),
                "age_s": round(now - last[0], 3), "participant": self.participants.get(track, "")}
        return out
