"""Head pose (yaw, pitch, roll in degrees) from the landmarker's 478 3-D landmarks.

The face's own axes are taken from the landmarks (image pixels; z is the model's depth, same scale as
x, smaller towards the camera): its left from the right eye's outer corner (33) to the left eye's
(263), its up from the chin (152) to the top of the forehead (10), made orthogonal to the left, and
its forward (out of the face) as left x up. The angles are those of that frame relative to a face
looking straight into the camera, in a REP-103 head frame (x forward, y the person's left, z up),
applied as yaw (about z), then pitch (about y), then roll (about x):

- yaw > 0: the person turns to their own left (their nose towards the image's right);
- pitch > 0: they look down;
- roll > 0: the head tilts towards their right shoulder (counter-clockwise as the camera sees it).

A geometric estimate from four landmarks, not MediaPipe's facial transformation matrix (which fits
a canonical face mesh by Procrustes and needs the camera's intrinsics); its yaw and pitch follow the
landmark model's depth, which is relative. Good to a few degrees for roll; treat yaw and pitch as
ordinal (turned left or right, up or down, and roughly how far), not as a measurement.
"""
from __future__ import annotations

import numpy as np

RIGHT_EYE_OUTER, LEFT_EYE_OUTER, CHIN, FOREHEAD = 33, 263, 152, 10


def head_pose_degrees(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(478, 3) image-pixel landmarks -> (yaw, pitch, roll) in degrees."""
    pts = np.asarray(landmarks, np.float64)
    if pts.ndim != 2 or pts.shape[0] <= max(RIGHT_EYE_OUTER, LEFT_EYE_OUTER, CHIN, FOREHEAD) or pts.shape[1] < 3:
        raise ValueError(f"head pose needs (478, 3) landmarks, got {pts.shape}")
    left = pts[LEFT_EYE_OUTER] - pts[RIGHT_EYE_OUTER]
    left /= np.linalg.norm(left)
    up = pts[FOREHEAD] - pts[CHIN]
    up -= up.dot(left) * left
    up /= np.linalg.norm(up)
    forward = np.cross(left, up)
    # camera (x right, y down, z away) -> the reference head frame of a face looking into the camera:
    # forward = -z, left = +x, up = -y
    to_ref = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    r = to_ref @ np.column_stack([forward, left, up])      # columns: the face's axes in the reference frame
    yaw = np.arctan2(r[1, 0], r[0, 0])
    pitch = np.arcsin(np.clip(-r[2, 0], -1.0, 1.0))
    roll = np.arctan2(r[2, 1], r[2, 2])
    return float(np.degrees(yaw)), float(np.degrees(pitch)), float(np.degrees(roll))
