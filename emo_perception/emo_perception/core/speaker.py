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
With a sound direction of arrival (a microphone array's azimuth, at most `doa_max_age_s` old), only
the faces within `doa_tolerance_deg` of it can speak: none there -> voice-only (the sound comes from
elsewhere); exactly one -> that face; several -> the lip rule among them.
"""
from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass

VOICE_ONLY = ""
# Lip activity is kept this long past the averaging window, behind the newest face frame: a step's time
# trails the face stream by less (the aligner's wait and measured lag stay under the time-jump threshold).
HISTORY_SLACK_S = 2.0
# The voice-only person's name in files and on screens (affect.csv, predictions.csv, the live view): an
# empty cell reads as NaN in pandas and NA in R. Face tracks are named f0, f1, ...: no clash.
VOICE_ONLY_NAME = "voice"


def track_name(track_id: str) -> str:
    """A track id as files and people see it: the voice-only estimate ("") becomes VOICE_ONLY_NAME."""
    return track_id if track_id != VOICE_ONLY else VOICE_ONLY_NAME


@dataclass
class SpeakerConfig:
    voice_threshold: float = 0.5    # VAD probability from which a step is voiced
    window_s: float = 1.5           # lip activity averaged over this much data time: a new speaker takes
                                    # about half of it to be recognised (0.5 s: 89 % instead of 99 %)
    min_activity: float = 0.04      # averaged activity a speaker's lips reach (bench/bench_speaker.py)
    margin: float = 1.5             # ... and this many times any other face's
    doa_tolerance_deg: float = 15.0  # a face this close to the sound's azimuth can be its source
    doa_max_age_s: float = 0.5       # a direction older than this (data time) is not used
    camera_hfov_deg: float = 70.0    # the camera's horizontal field of view: face box -> azimuth


def face_azimuth_deg(box, image_width: int, hfov_deg: float) -> float:
    """Azimuth of a face box's centre seen from the camera: 0 on the optical axis, positive to the
    left (ROS REP-103 yaw), for a pinhole camera with the given horizontal field of view."""
    cx = box[0] + box[2] / 2.0
    focal = (image_width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    return math.degrees(math.atan((image_width / 2.0 - cx) / focal))


class SpeakerAttribution:
    def __init__(self, config: SpeakerConfig | None = None):
        self.config = config or SpeakerConfig()
        self._history: dict[str, deque] = {}     # track -> (face frame stamp, activity)
        self._last_frame = None
        self._direction = None                   # (stamp, azimuth in degrees)

    def add_direction(self, stamp: float, azimuth_deg: float) -> None:
        """The latest sound direction of arrival, in the camera's azimuth convention."""
        if math.isfinite(azimuth_deg):
            self._direction = (stamp, azimuth_deg)

    def add_frame(self, stamp: float, faces) -> None:
        """A face frame's lip activities (each FaceResult's mouth_activity; NaN = unknown), as frames
        arrive (in stamp order). A step uses only frames up to its own time, so the decision does not
        depend on how far the face stream has run ahead (live and offline decide alike)."""
        if self._last_frame is not None and stamp <= self._last_frame:
            return
        self._last_frame = stamp
        for f in faces:
            if math.isfinite(f.mouth_activity):
                self._history.setdefault(f.track_id, deque()).append((stamp, f.mouth_activity))
        # bounded here, not only in voiced steps: silence, no microphone or tracks that left kept it all
        self._forget_before(stamp - self.config.window_s - HISTORY_SLACK_S)

    def _forget_before(self, t: float) -> None:
        for tid in list(self._history):
            h = self._history[tid]
            while h and h[0][0] < t:
                h.popleft()
            if not h:
                del self._history[tid]

    def history_size(self) -> int:
        """Lip activity samples held (all tracks)."""
        return sum(len(h) for h in self._history.values())

    def speaker(self, time: float, face_ids, voice_probability: float | None, boxes=None,
                image_width: int = 0) -> str | None:
        """None: not voiced (audio goes to everyone); a track id; or VOICE_ONLY. `boxes` (track -> box)
        and `image_width` place the faces for a sound direction."""
        c = self.config
        if voice_probability is None or not voice_probability >= c.voice_threshold:   # NaN: not voiced
            return None
        self._forget_before(time - c.window_s)
        face_ids = list(face_ids)
        if not face_ids:
            return VOICE_ONLY
        near = self._faces_towards_sound(time, face_ids, boxes or {}, image_width)
        if near is not None:
            if len(near) <= 1:
                return near[0] if near else VOICE_ONLY
            face_ids = near
        upto = {t: [a for s, a in self._history.get(t, ()) if s <= time + 1e-6] for t in face_ids}
        scores = {t: statistics.fmean(a) for t, a in upto.items() if a}
        if not scores:
            return face_ids[0] if len(face_ids) == 1 else VOICE_ONLY
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        best, top = ranked[0]
        others = max((v for _, v in ranked[1:]), default=0.0)
        if top >= c.min_activity and top >= c.margin * others:
            return best
        return VOICE_ONLY

    def _faces_towards_sound(self, time, face_ids, boxes, image_width):
        """The faces within the tolerance of a recent sound direction; None without a usable one."""
        c = self.config
        if self._direction is None or image_width <= 0 or not 0 <= time - self._direction[0] <= c.doa_max_age_s:
            return None
        return [t for t in face_ids if boxes.get(t) is not None and boxes[t][2] > 0
                and abs(face_azimuth_deg(boxes[t], image_width, c.camera_hfov_deg) - self._direction[1])
                <= c.doa_tolerance_deg]

    def reset(self):
        self._history.clear()
        self._last_frame = None
        self._direction = None
