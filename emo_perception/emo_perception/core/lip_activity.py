"""Lip activity per face track, from the detector's keypoints (LipActivity) or the landmarker's jawOpen
blendshape (JawActivity, face_landmarks on): how much the mouth moves between frames.

For each face with eye, nose and mouth keypoints (BlazeFace), two small grey patches are cut from the
frame in the face's own coordinates (levelled by the eye line, scaled by the eye distance, so head
translation, roll and distance are undone): the mouth, and a reference strip across the cheeks and
nose. Each patch is normalised to zero mean and unit variance (light changes cancel). Activity = the
mouth patch's mean absolute change since the track's previous frame minus the reference patch's: head
motion the keypoints did not quite follow, keypoint jitter and camera noise change both, speech changes
the mouth. Only the two patches are resampled, never the frame.
"""
from __future__ import annotations

import math

import numpy as np

from .blazeface import LEFT_EYE, MOUTH, NOSE, RIGHT_EYE

MOUTH_SIZE = (1.1, 0.6)         # width, height in eye distances, centred on the mouth keypoint
REFERENCE_SIZE = (1.6, 0.35)    # across nose and cheeks, centred between the eye line and the nose tip
PATCH_PX = (24, 14)             # resampled patch size (width, height) for both
MAX_GAP_S = 0.3                 # a previous frame older than this is not compared against


def _patch(rgb, centre, angle, scale_xy, size_px):
    """The size_px patch whose pixel (u, v) is frame point centre + R(angle) @ ((u, v) - size/2) * scale."""
    import cv2

    c, s = math.cos(angle), math.sin(angle)
    sx, sy = scale_xy
    w, h = size_px
    m = np.array([[c * sx, -s * sy, 0.0], [s * sx, c * sy, 0.0]], np.float64)
    m[:, 2] = np.asarray(centre, np.float64) - m[:, :2] @ np.array([w / 2.0, h / 2.0])
    patch = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)
    grey = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return (grey - grey.mean()) / (grey.std() + 1.0)


def face_patches(rgb: np.ndarray, keypoints) -> tuple[np.ndarray, np.ndarray] | None:
    """(mouth, reference) normalised patches of one face, or None if its keypoints are unusable."""
    k = np.asarray(keypoints, np.float64)
    eye_vec = k[LEFT_EYE] - k[RIGHT_EYE]
    d = float(np.hypot(*eye_vec))
    if not np.isfinite(k).all() or d < 4.0:     # a face under ~10 px: no lips to see
        return None
    angle = math.atan2(eye_vec[1], eye_vec[0])
    eyes_mid = (k[LEFT_EYE] + k[RIGHT_EYE]) / 2.0
    mouth = _patch(rgb, k[MOUTH], angle, (d * MOUTH_SIZE[0] / PATCH_PX[0], d * MOUTH_SIZE[1] / PATCH_PX[1]), PATCH_PX)
    ref = _patch(rgb, (eyes_mid + k[NOSE]) / 2.0, angle,
                 (d * REFERENCE_SIZE[0] / PATCH_PX[0], d * REFERENCE_SIZE[1] / PATCH_PX[1]), PATCH_PX)
    return mouth, ref


class LipActivity:
    """Per track, the last frame's patches; `update` returns this frame's activity per track."""

    def __init__(self, max_gap_s: float = MAX_GAP_S):
        self.max_gap_s = max_gap_s
        self._last: dict[str, tuple[float, np.ndarray, np.ndarray]] = {}

    def update(self, rgb: np.ndarray, faces, stamp: float) -> dict[str, float]:
        """faces: (track id, keypoints or None). Activity is NaN for a face without keypoints or
        without a recent previous frame (a new track, a gap)."""
        out, seen = {}, set()
        for track_id, keypoints in faces:
            seen.add(track_id)
            patches = None if keypoints is None else face_patches(rgb, keypoints)
            prev = self._last.pop(track_id, None)
            out[track_id] = float("nan")
            if patches is None:
                continue
            if prev is not None and 0.0 < stamp - prev[0] <= self.max_gap_s:
                mouth_change = float(np.abs(patches[0] - prev[1]).mean())
                ref_change = float(np.abs(patches[1] - prev[2]).mean())
                out[track_id] = max(0.0, mouth_change - ref_change)
            self._last[track_id] = (stamp, *patches)
        for track_id in [t for t in self._last if t not in seen and stamp - self._last[t][0] > self.max_gap_s]:
            del self._last[track_id]
        return out

    def reset(self):
        self._last.clear()


# |change of jawOpen| per frame times this is on the scale of LipActivity's measure, so the fusion's
# speaker thresholds (min_activity 0.04, margin 1.5) hold for both: on bench_speaker's clips the
# speaker's mean 0.032 x 3.5 = 0.11, LipActivity's 0.11 (listeners: 0.003 x 3.5 = 0.01 against 0.03-0.05)
JAW_ACTIVITY_SCALE = 3.5


class JawActivity:
    """Lip activity from the landmarker's jawOpen blendshape (face_landmarks on): per track, how much
    the jaw opened or closed since the track's previous frame, x JAW_ACTIVITY_SCALE. The landmarks
    follow the face, so head motion and light do not enter (bench/bench_speaker.py: the speaker's
    activity 11-12x the listener's, against 2.3-4.3x for LipActivity's patches; measured on generated
    talking heads, whose only mouth motion is the jaw: real lips that move without the jaw are not)."""

    def __init__(self, max_gap_s: float = MAX_GAP_S):
        self.max_gap_s = max_gap_s
        self._last: dict[str, tuple[float, float]] = {}

    def update(self, faces, stamp: float) -> dict[str, float]:
        """faces: (track id, jawOpen or None: no landmarks). NaN for a face without landmarks or without
        a recent previous frame (a new track, a gap)."""
        out, seen = {}, set()
        for track_id, jaw in faces:
            seen.add(track_id)
            prev = self._last.pop(track_id, None)
            out[track_id] = float("nan")
            if jaw is None or not math.isfinite(jaw):
                continue
            if prev is not None and 0.0 < stamp - prev[0] <= self.max_gap_s:
                out[track_id] = abs(jaw - prev[1]) * JAW_ACTIVITY_SCALE
            self._last[track_id] = (stamp, float(jaw))
        for track_id in [t for t in self._last if t not in seen and stamp - self._last[t][0] > self.max_gap_s]:
            del self._last[track_id]
        return out

    def reset(self):
        self._last.clear()
