"""Face detection behind a small interface, so robots can plug in a stronger detector.

Default: OpenCV's Haar cascade (haarcascade_frontalface_default.xml, shipped inside
opencv-python<5, so it works offline). Chosen after measuring the offline options
(README, "Face detector"): it needs no extra runtime dependency beyond OpenCV, which we need
anyway, and on a frame downscaled to 320 px width it runs well inside the 30 ms face-path budget.
Its limits are known: frontal faces only, and no calibrated confidence.
"""
from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .rgb import require_rgb

CASCADE = "haarcascade_frontalface_default.xml"
# Distro OpenCV (Debian/Ubuntu python3-opencv) has no cv2.data; its cascades come in `opencv-data`.
DISTRO_CASCADE_DIRS = ("/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades")


class DetectionError(ValueError):
    """A frame the detector cannot work on (the text says what was wrong); the frame is dropped."""


def find_haar_cascade(name: str = CASCADE) -> str:
    """Path of an OpenCV Haar cascade: pip OpenCV's cv2.data, else the distro's `opencv-data` files."""
    import cv2

    dirs = [getattr(getattr(cv2, "data", None), "haarcascades", None), *DISTRO_CASCADE_DIRS]
    for d in dirs:
        if d and (pathlib.Path(d) / name).is_file():
            return str(pathlib.Path(d) / name)
    raise FileNotFoundError(f"Haar cascade '{name}' not found (looked in cv2.data and {', '.join(DISTRO_CASCADE_DIRS)}); "
                            "install Debian/Ubuntu package 'opencv-data' (apt install opencv-data) "
                            "or pip opencv-python-headless<5")


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
        path = cascade_path or find_haar_cascade()
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise FileNotFoundError(f"could not load Haar cascade '{path}': not a cascade XML file")
        self.max_width, self.min_face_px = max_width, min_face_px
        self.min_neighbors, self.scale_factor = min_neighbors, scale_factor

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        cv2 = self._cv2
        require_rgb(rgb, DetectionError)
        scale = min(1.0, self.max_width / rgb.shape[1])
        size = (int(rgb.shape[1] * scale), int(rgb.shape[0] * scale))
        if min(size) < self.min_face_px:
            return []   # e.g. a 6000x1 strip: no face of min_face_size fits once downscaled
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        try:
            if scale < 1.0:
                grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
            grey = cv2.equalizeHist(grey)
            boxes, _, weights = self._cascade.detectMultiScale3(
                grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                minSize=(self.min_face_px, self.min_face_px), outputRejectLevels=True)
        except cv2.error as err:
            raise DetectionError(f"Haar detection failed on a {rgb.shape[1]}x{rgb.shape[0]} frame: {err}") from err
        dets = []
        for (x, y, w, h), weight in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(weights).reshape(-1)):
            # The cascade's last-stage weight is unbounded; squash it to [0, 1] (monotonic, uncalibrated).
            score = float(1.0 / (1.0 + np.exp(-float(weight))))
            dets.append(Detection(int(round(x / scale)), int(round(y / scale)),
                                  int(round(w / scale)), int(round(h / scale)), score))
        return sorted(dets, key=lambda d: -d.score)


class YuNetFaceDetector:
    """OpenCV's YuNet (cv2.FaceDetectorYN) on a model file the user supplies
    (face_detection_yunet_2023mar.onnx from the OpenCV model zoo; none ships in any package)."""

    name = "yunet"

    def __init__(self, model_path: str, score_threshold: float = 0.7, max_width: int = 640, **_):
        import cv2

        if not model_path or not os.path.isfile(model_path):
            raise FileNotFoundError(f"YuNet model file '{model_path}' does not exist; download "
                                    "face_detection_yunet_2023mar.onnx and set detector_model to its path")
        self._cv2, self.max_width = cv2, max_width
        self._net = cv2.FaceDetectorYN.create(model_path, "", (320, 320), score_threshold)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        cv2 = self._cv2
        require_rgb(rgb, DetectionError)
        scale = min(1.0, self.max_width / rgb.shape[1])
        size = (int(rgb.shape[1] * scale), int(rgb.shape[0] * scale))
        if min(size) < 8:
            return []
        try:
            bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            if scale < 1.0:
                bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
            self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, faces = self._net.detect(bgr)
        except cv2.error as err:
            raise DetectionError(f"YuNet detection failed on a {rgb.shape[1]}x{rgb.shape[0]} frame: {err}") from err
        dets = [Detection(*(int(round(v / scale)) for v in f[:4]), float(f[-1])) for f in (faces if faces is not None else [])]
        return sorted(dets, key=lambda d: -d.score)


def make_detector(name: str, model_path: str = "", **kwargs) -> FaceDetector:
    """Detector by configuration name (validated at configure time)."""
    if name == "haar":
        return HaarFaceDetector(**kwargs)
    if name == "yunet":
        return YuNetFaceDetector(model_path, max_width=kwargs.get("max_width", 640))
    raise ValueError(f"unknown face detector '{name}'; available: haar, yunet")
