"""Face detection behind a small interface, so robots can plug in a stronger detector.

Default: OpenCV's Haar cascade (haarcascade_frontalface_default.xml, shipped inside
opencv-python<5, so it works offline). Chosen after measuring the offline options
(README, "Face detector"): it needs no extra runtime dependency beyond OpenCV, which we need
anyway, and on a frame downscaled to 320 px width it runs well inside the 30 ms face-path budget.
Its limits are known: frontal faces only, and no calibrated confidence.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Detection:
    x: int       # box in pixels of the input image
    y: int
    w: int
    h: int
    score: float  # [0, 1]

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.w, self.h


class FaceDetector(Protocol):
    name: str

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """(H, W, 3) uint8 RGB -> faces, best first."""


class HaarFaceDetector:
    """OpenCV Viola-Jones cascade on a downscaled grey image."""

    name = "haar_frontalface_default"

    def __init__(self, max_width: int = 320, min_face_px: int = 32, min_neighbors: int = 4,
                 scale_factor: float = 1.2, cascade_path: str | None = None):
        import cv2

        self._cv2 = cv2
        path = cascade_path or os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise FileNotFoundError(f"could not load Haar cascade '{path}' (needs opencv-python-headless<5)")
        self.max_width, self.min_face_px = max_width, min_face_px
        self.min_neighbors, self.scale_factor = min_neighbors, scale_factor

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        cv2 = self._cv2
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
        scale = min(1.0, self.max_width / rgb.shape[1])
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        grey = cv2.equalizeHist(grey)
        boxes, _, weights = self._cascade.detectMultiScale3(
            grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_face_px, self.min_face_px), outputRejectLevels=True)
        dets = []
        for (x, y, w, h), weight in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(weights).reshape(-1)):
            # The cascade's last-stage weight is unbounded; squash it to [0, 1] (monotonic, uncalibrated).
            score = float(1.0 / (1.0 + np.exp(-float(weight))))
            dets.append(Detection(int(round(x / scale)), int(round(y / scale)),
                                  int(round(w / scale)), int(round(h / scale)), score))
        return sorted(dets, key=lambda d: -d.score)


def make_detector(name: str, **kwargs) -> FaceDetector:
    """Detector by configuration name (validated at configure time)."""
    if name == "haar":
        return HaarFaceDetector(**kwargs)
    raise ValueError(f"unknown face detector '{name}'; available: haar")
