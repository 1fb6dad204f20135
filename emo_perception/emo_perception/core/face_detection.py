"""Face detection behind a small interface, so robots can plug in a stronger detector.

Default: MediaPipe's full-range BlazeFace (a CNN, faces up to ~5 m, six keypoints) run through our
inference backends on a fixed letterboxed canvas (docs/face_detection.md for the measurements).
Options: OpenCV's Haar cascade (ships with opencv-python<5 or Debian's opencv-data; frontal faces
only, no keypoints) and YuNet (a model file the user supplies).
"""
from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from . import blazeface
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
    raise FileNotFoundError(f"Haar cascade '{name}' not found (looked in cv2.data and "
                            f"{', '.join(DISTRO_CASCADE_DIRS)}); "
                            "install Debian/Ubuntu package 'opencv-data' (apt install opencv-data) "
                            "or pip opencv-python-headless<5")


@dataclass(frozen=True)
class Detection:
    x: int       # box in pixels of the input image
    y: int
    w: int
    h: int
    score: float  # [0, 1]
    keypoints: tuple | None = None   # ((x, y), ...) in image pixels, core/blazeface.py's order; None: no keypoints

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
        self.args = dict(max_width=max_width, min_face_px=min_face_px, min_neighbors=min_neighbors,
                         scale_factor=scale_factor, cascade_path=cascade_path)
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
        self.args = dict(model_path=model_path, score_threshold=score_threshold, max_width=max_width)
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
        dets = [Detection(*(int(round(v / scale)) for v in f[:4]), float(f[-1]))
                for f in (faces if faces is not None else [])]
        return sorted(dets, key=lambda d: -d.score)


def letterbox_canvas(width: int) -> tuple[int, int]:
    """Detection canvas (width, height) for a width setting: multiples of 32 near 16:9, the height
    rounded down (a 720p frame in a 576x320 canvas is scaled by 0.444 instead of 0.45 but the network
    sees 9 % fewer pixels than at 576x352); 4:3 frames leave a strip at the right."""
    m = blazeface.INPUT_MULTIPLE
    w = max(m, int(round(width / m)) * m)
    return w, max(m, int(w * 9 / 16) // m * m)


# The full-range model is trained for faces far from the camera and scores close ones low (a 290 px
# face of a 720p frame, a person ~0.5 m away: 0.3-0.5); its false faces on 117 real non-face frames
# are all smaller than LARGE_FACE_PX canvas pixels. Large candidates need LARGE_FACE_SCORE only
# (bench_detectors.py: 256-320 px faces in 720p 80-83 % -> 100 %, no extra false face, no extra time).
LARGE_FACE_PX = 64
LARGE_FACE_SCORE = 0.3
# Frames per network call in BlazeFaceDetector.detect_many (eight 576x320 canvases: 18 MB of input). Meant
# for GPUs; on a 2-core CPU it is 0.81x the frames/s of detect() (bench/bench_extraction.py --detector-only,
# docs/face_detection.md), so CPUs should detect frame by frame.
DETECT_MANY_BATCH = 8


class BlazeFaceDetector:
    """MediaPipe's full-range BlazeFace on one fixed canvas: the frame is resized once (aspect kept) into
    its top-left corner, the fully convolutional network runs at the canvas size (so a 720p face keeps
    more pixels than at MediaPipe's 192x192), boxes and keypoints are mapped back to frame pixels."""

    name = "blazeface_full_range"

    def __init__(self, model, canvas_width: int = 576, min_score: float = 0.5,
                 nms_iou: float = blazeface.NMS_IOU, min_face_px: int = 8, canvas: tuple | None = None):
        import cv2

        names = model.card.output_names()
        if names != ["regressors", "logits"]:
            raise ValueError(f"detector model '{model.card.path}' outputs {names}; expected regressors and logits "
                             "(a blazeface_full_range card from emo_convert_blazeface)")
        self._cv2, self.model = cv2, model
        self.canvas = tuple(canvas) if canvas else letterbox_canvas(canvas_width)   # (width, height)
        self.anchors = blazeface.anchor_centres(self.canvas[1], self.canvas[0])
        self.min_score, self.nms_iou, self.min_face_px = min_score, nms_iou, min_face_px
        self._padded = np.full((self.canvas[1], self.canvas[0], 3), 128, np.uint8)

    def _fill(self, rgb: np.ndarray, scale: float) -> tuple:
        """Fill the canvas (uint8, grey padding); returns the frame -> canvas scale (sx, sy).

        Downscaling is OpenCV's area average by a whole factor (its fast path; the frame is first
        cut to a multiple of it, losing under k pixels at the right and bottom) and then bilinear
        for the remaining factor below 2: 1.7 ms instead of 5.3 ms for one area resize of a 1080p frame."""
        cv2 = self._cv2
        cw, ch = self.canvas
        k = max(1, int(1.0 / scale))
        if k > 1:
            h, w = rgb.shape[0] // k * k, rgb.shape[1] // k * k
            rgb = cv2.resize(rgb[:h, :w], (w // k, h // k), interpolation=cv2.INTER_AREA)
        w, h = max(1, int(round(rgb.shape[1] * scale * k))), max(1, int(round(rgb.shape[0] * scale * k)))
        w, h = min(w, cw), min(h, ch)
        self._padded[:h, :w] = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)
        self._padded[h:], self._padded[:h, w:] = 128, 128
        return w / (rgb.shape[1] * k), h / (rgb.shape[0] * k)

    def _blob(self) -> np.ndarray:
        """The filled canvas as the network's input: (1, 3, H, W) float32 RGB in [-1, 1]."""
        return self._cv2.dnn.blobFromImage(self._padded, 1.0 / 127.5, mean=(127.5, 127.5, 127.5))

    def _candidates(self, to_frame):
        """Decoded candidates of the filled canvas, in frame pixels."""
        out = self.model.run({"image": self._blob()})
        return self._frame_candidates(out["regressors"], out["logits"], to_frame)

    def _frame_candidates(self, regressors, logits, to_frame):
        """One canvas's outputs ((A, 16) and (A, 1), with or without a batch axis of 1) -> candidates in frame
        pixels."""
        boxes, kps, scores = blazeface.decode(regressors, logits, self.anchors, min(self.min_score, LARGE_FACE_SCORE))
        large = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) >= LARGE_FACE_PX
        keep = scores >= np.where(large, min(self.min_score, LARGE_FACE_SCORE), self.min_score)
        return boxes[keep] / np.tile(to_frame, 2), kps[keep] / to_frame, scores[keep]

    def _scale(self, rgb: np.ndarray) -> float | None:
        """Frame -> canvas scale, or None where no face of min_face_px fits once scaled (e.g. a 6000x1 strip)."""
        require_rgb(rgb, DetectionError)
        scale = min(self.canvas[0] / rgb.shape[1], self.canvas[1] / rgb.shape[0])
        return None if min(rgb.shape[:2]) * scale < self.min_face_px else scale

    def _faces(self, boxes, kps, scores, to_frame) -> list[Detection]:
        """The merged faces (weighted_nms) of one frame whose smallest side reaches min_face_px canvas pixels."""
        keep = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * to_frame.min() >= self.min_face_px
        return [Detection(int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0)), float(score),
                          tuple((float(x), float(y)) for x, y in kp))
                for (x0, y0, x1, y1), kp, score in zip(boxes[keep], kps[keep], scores[keep])]

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        cv2 = self._cv2
        scale = self._scale(rgb)
        if scale is None:
            return []
        try:
            to_frame = np.array(self._fill(rgb, scale), np.float32)
            boxes, kps, scores = blazeface.weighted_nms(*self._candidates(to_frame), self.nms_iou)
        except cv2.error as err:
            raise DetectionError(f"BlazeFace input failed on a {rgb.shape[1]}x{rgb.shape[0]} frame: {err}") from err
        return self._faces(boxes, kps, scores, to_frame)

    def detect_many(self, frames, batch: int = DETECT_MANY_BATCH) -> list[list[Detection]]:
        """detect() of each frame, in order, with the network run once per `batch` frames (its batch axis is
        dynamic: emo_convert_blazeface): for offline work on a GPU. Frames may differ in size (each is
        letterboxed into the same canvas). The same faces as detect() frame by frame, up to the last float
        bits ONNX Runtime's batched convolutions may change (test_blazeface_batch.py). A TensorRT engine takes
        it only if built for that batch (the nodes' engines are built for 1)."""
        if batch < 1:
            raise ValueError(f"detect_many batch is {batch}; it must be at least 1")
        out = []
        for start in range(0, len(frames), batch):
            out.extend(self._detect_chunk(frames[start:start + batch]))
        return out

    def _detect_chunk(self, frames) -> list[list[Detection]]:
        """detect_many of at most `batch` frames: one network call for those where a face can fit."""
        cv2 = self._cv2
        to_frames, blobs = [], []     # to_frames: per frame its canvas scales, None where detect() gives []
        for rgb in frames:
            scale = self._scale(rgb)
            if scale is None:
                to_frames.append(None)
                continue
            try:
                to_frames.append(np.array(self._fill(rgb, scale), np.float32))
            except cv2.error as err:
                raise DetectionError(f"BlazeFace input failed on a {rgb.shape[1]}x{rgb.shape[0]} frame: {err}") \
                    from err
            blobs.append(self._blob())    # a copy: the canvas is refilled by the next frame
        if not blobs:
            return [[] for _ in frames]
        out = self.model.run({"image": np.concatenate(blobs)})    # (B, 3, H, W) -> (B, A, 16), (B, A, 1)
        faces, k = [], 0
        for to_frame in to_frames:
            if to_frame is None:
                faces.append([])
                continue
            candidates = self._frame_candidates(out["regressors"][k], out["logits"][k], to_frame)
            faces.append(self._faces(*blazeface.weighted_nms(*candidates, self.nms_iou), to_frame))
            k += 1
        return faces


# Following faces between full-frame detections (FacePipeline's detect_every): each face found in the
# previous frame is looked for only in a square REGION_SCALE times its box side around where the tracker
# predicts it, resized to REGION_SIDE px (the face is ~REGION_SIDE / REGION_SCALE = 38 px there, well
# above BlazeFace's ~15 px limit; a face may move ~0.7 of its width between processed frames beyond the
# tracker's prediction). BlazeFace runs on a REGION_SIDE square canvas: ~1/20 of the 576x320 canvas's pixels.
REGION_SCALE = 2.5
REGION_SIDE = 96
# A followed face keeps its region square while the prediction moves less than STICKY_SHIFT of the square's
# side (0.2 face widths) and its size changes less than STICKY_SIZE (keeps_square).
STICKY_SHIFT = 0.08
STICKY_SIZE = 0.15


def region_detector(detector: FaceDetector, model=None) -> FaceDetector:
    """The detector that looks for one followed face in its region (detect_in_regions): BlazeFace on a
    REGION_SIDE square canvas (`model`: the network loaded for that input size, e.g. a second TensorRT
    engine; default: the full detector's, whose input size is dynamic; ONNX Runtime sessions take calls from
    two threads), Haar and YuNet a second instance of themselves, others themselves."""
    if isinstance(detector, BlazeFaceDetector):
        return BlazeFaceDetector(model or detector.model, min_score=detector.min_score, nms_iou=detector.nms_iou,
                                 canvas=(REGION_SIDE, REGION_SIDE))
    if isinstance(detector, (HaarFaceDetector, YuNetFaceDetector)):
        # an OpenCV object of its own: the regions may run while detect_async's worker uses the first one
        return type(detector)(**detector.args)
    return detector


def region_square(box, scale: float = REGION_SCALE) -> tuple[int, int, int]:
    """(x0, y0, side) in frame pixels: the square `scale` times the box's longer side, centred on it."""
    x, y, w, h = box
    side = max(1, int(round(scale * max(w, h))))
    return int(round(x + w / 2 - side / 2)), int(round(y + h / 2 - side / 2)), side


def keeps_square(old, new) -> bool:
    """Whether a followed face's previous region square `old` still serves where `new` would be centred:
    within STICKY_SHIFT of its side and STICKY_SIZE of its size. A still face then gets the same crop in every
    frame, so its keypoints do not jitter with where the prediction put the crop (lip activity reads them)."""
    (ox, oy, os_), (nx, ny, ns) = old, new
    shift = np.hypot(nx + ns / 2 - ox - os_ / 2, ny + ns / 2 - oy - os_ / 2)
    return shift <= STICKY_SHIFT * os_ and abs(ns / os_ - 1.0) <= STICKY_SIZE


def detect_in_regions(detector: FaceDetector, rgb: np.ndarray, boxes, side: int = REGION_SIDE,
                      squares=None) -> list:
    """For each box (x, y, w, h, floats allowed): the face `detector` finds nearest the centre of the
    square around it (region_square, or `squares`' (x0, y0, side) where given; parts outside the frame
    grey), in frame pixels, or None where it finds none."""
    import cv2

    require_rgb(rgb, DetectionError)
    fh, fw = rgb.shape[:2]
    out = []
    for i, box in enumerate(boxes):
        x0, y0, s = squares[i] if squares is not None else region_square(box)
        k = side / s
        crop = np.full((side, side, 3), 128, np.uint8)
        ax0, ay0, ax1, ay1 = max(0, x0), max(0, y0), min(fw, x0 + s), min(fh, y0 + s)
        if ax1 - ax0 < 2 or ay1 - ay0 < 2:
            out.append(None)    # the region left the frame
            continue
        # where the visible part lands in the crop (rounded outward; at most a pixel of stretch)
        cx0, cy0 = int((ax0 - x0) * k), int((ay0 - y0) * k)
        cx1 = min(side, max(cx0 + 1, int(np.ceil((ax1 - x0) * k))))
        cy1 = min(side, max(cy0 + 1, int(np.ceil((ay1 - y0) * k))))
        try:
            crop[cy0:cy1, cx0:cx1] = cv2.resize(rgb[ay0:ay1, ax0:ax1], (cx1 - cx0, cy1 - cy0),
                                                interpolation=cv2.INTER_AREA)
        except cv2.error as err:
            raise DetectionError(f"region of a {fw}x{fh} frame at {box} could not be resized: {err}") from err
        found = detector.detect(crop)
        if not found:
            out.append(None)
            continue
        # the face nearest the region's centre (where the track is predicted), not the best-scoring:
        # a neighbour inside the region is followed by its own region
        d = min(found, key=lambda d: np.hypot(cx0 + (x0 + s / 2 - ax0) * k - d.x - d.w / 2,
                                               cy0 + (y0 + s / 2 - ay0) * k - d.y - d.h / 2))
        sx, sy = (ax1 - ax0) / (cx1 - cx0), (ay1 - ay0) / (cy1 - cy0)   # crop px -> frame px

        def back(px, py, sx=sx, sy=sy, cx0=cx0, cy0=cy0, ax0=ax0, ay0=ay0):
            return ax0 + (px - cx0) * sx, ay0 + (py - cy0) * sy
        bx0, by0 = back(d.x, d.y)
        bx1, by1 = back(d.x + d.w, d.y + d.h)
        kps = None if d.keypoints is None else tuple(back(px, py) for px, py in d.keypoints)
        out.append(Detection(int(round(bx0)), int(round(by0)), int(round(bx1 - bx0)), int(round(by1 - by0)),
                             d.score, kps))
    return out


def make_detector(name: str, model_path: str = "", model=None, **kwargs) -> FaceDetector:
    """Detector by configuration name (validated at configure time); `model`: the loaded network of
    detectors that run through the inference backends (blazeface)."""
    min_face = kwargs.pop("min_face_px", 0)
    threshold = kwargs.pop("threshold", 0.5)
    if name == "blazeface":
        return BlazeFaceDetector(model, canvas_width=kwargs.get("max_width", 576), min_score=threshold,
                                 min_face_px=min_face or 8)
    if name == "haar":
        return HaarFaceDetector(min_face_px=min_face or 32, **kwargs)
    if name == "yunet":
        return YuNetFaceDetector(model_path, max_width=kwargs.get("max_width", 640))
    raise ValueError(f"unknown face detector '{name}'; available: blazeface, haar, yunet")
