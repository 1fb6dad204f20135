"""The one check that an array is what every image stage takes: (H, W, 3) uint8 RGB."""
from __future__ import annotations

import numpy as np


def require_rgb(rgb, error=ValueError) -> np.ndarray:
    """Return `rgb` if it is an (H, W, 3) uint8 array with H, W > 0; else raise `error`."""
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 \
            or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        shape = getattr(rgb, "shape", None)
        raise error(f"expected an (H, W, 3) uint8 RGB image, got {shape} {getattr(rgb, 'dtype', type(rgb))}")
    return rgb
