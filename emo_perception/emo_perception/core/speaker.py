"""Who is speaking: while the voice is active it goes to the face whose lips move, not to everyone.

Per 40 ms step, with the step's voice probability and the faces in view (each with the lip activity
the face pipeline measured, core/lip_activity.py):
- not voiced (probability below `voice_threshold`): nobody speaks; the audio (silence, noise) is
  context for every face, as without attribution (returns None);
- voiced, and one face's lip activity averaged over the last `window_s` of face frames is at least
  `min_activity` and `margin` times every other face's: that face speaks (returns its track id);
- voiced otherwise: the voice is attributed to nobody in view, a voice-only estimate (returns "");
  so is a voice with no face at all. One face without any lip information (a detector without
  keypoints, faces from ROS4HRI) still gets the voice: the usual one-person case, as before.
"""
from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass

VOICE_ONLY = ""


@dataclass
class SpeakerConfig:
    voice_threshold: float = 0.5    # VAD probability from which a step is voiced
    window_s: float = 1.5           # lip activity averaged over this much data time: a new speaker takes
                                    # about half of it to be recognised (0.5 s: 89 % instead of 99 %)
    min_activity: float = 0.04      # averaged activity a speaker's lips reach (bench/bench_speaker.py)
    margin: float = 1.5             # ... and this many times any other face's


class SpeakerAttribution:
    def __init__(self, config: SpeakerConfig | None = None):
        self.config = config or SpeakerConfig()
        self._history: dict[str, deque] = {}     # track -> (face frame stamp, activity)
        self._last_frame = None

    def add_frame(self, stamp: float, faces) -> None:
        """A face frame's lip activities (each FaceResult's mouth_activity; NaN = unknown). A frame
        held over several steps is added once."""
        if self._last_frame is not None and stamp == self._last_frame:
            return
        self._last_frame = stamp
        for f in faces:
            if math.isfinite(f.mouth_activity):
                self._history.setdefault(f.track_id, deque()).append((stamp, f.mouth_activity))

    def speaker(self, time: float, face_ids, voice_probability: float | None) -> str | None:
        """None: not voiced (audio goes to everyone); a track id; or VOICE_ONLY."""
        c = self.config
        if voice_probability is None or voice_probability < c.voice_threshold:
            return None
        for tid in list(self._history):
            h = self._history[tid]
            while h and h[0][0] < time - c.window_s:
                h.popleft()
            if not h:
                del self._history[tid]
        face_ids = list(face_ids)
        if not face_ids:
            return VOICE_ONLY
        scores = {t: statistics.fmean(a for _, a in self._history[t]) for t in face_ids if t in self._history}
        if not scores:
            return face_ids[0] if len(face_ids) == 1 else VOICE_ONLY
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        best, top = ranked[0]
        others = max((v for _, v in ranked[1:]), default=0.0)
        if top >= c.min_activity and top >= c.margin * others:
            return best
        return VOICE_ONLY

    def reset(self):
        self._history.clear()
        self._last_frame = None
