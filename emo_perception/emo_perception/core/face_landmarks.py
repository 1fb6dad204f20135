"""MediaPipe's Face Landmarker through our backends: the ROI, the crop, the 478 landmarks, the 52 blendshapes.

Models (converted once by `emo_convert_face_landmarker` from the face_landmarker.task bundle; cards
in models/): `face_landmarks_detector` takes a (1, 256, 256, 3) RGB crop in [0, 1] and gives 478 x
(x, y, z) in crop pixels plus a face-presence logit; `face_blendshapes` takes the image-pixel (x, y)
of BLENDSHAPE_LANDMARKS (146 of the 478) and gives the 52 coefficients named in BLENDSHAPE_NAMES.

The conventions are MediaPipe's (tasks/cc/vision/face_landmarker, calculators/util and tensor):
- ROI from a detection: the box centre, rotated so the eye keypoints are level (DetectionsToRects:
  rotation = atan2 from the person's right eye, image-left, to the left eye), the box's long side
  (square_long, as face_detection_front_detection_to_roi.pbtxt and the tracking ROI) times ROI_SCALE.
- ROI from landmarks (the next frame's, MediaPipe's tracking): the axis-aligned bounding box of all
  478 landmarks, rotated by the line from landmark 33 to 263 (the eyes' outer corners), square on its
  long side, times ROI_SCALE.
- Crop (ImageToTensor, OpenCV path): the rotated square's corners map onto the crop's corners,
  bilinear, border replicated, values /255, aspect not kept (the ROI is square anyway).
- Landmarks back to the image (LandmarkProjection): crop pixel (u, v) -> centre + R(rotation) @
  ((u / S - 0.5) * side, (v / S - 0.5) * side); z scaled by side / S like x.
- Presence: sigmoid of the logit, a face at >= MIN_PRESENCE (the task's min_detection_confidence).
FaceLandmarker runs both models for given ROIs; LandmarkTracking is MediaPipe's video loop (the
landmarks' ROI for the next frame, the detector only when needed). Measured: docs/face_detection.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rgb import require_rgb

LANDMARK_INPUT = 256     # the landmark model's crop side
NUM_LANDMARKS = 478      # 468 mesh points + 10 iris points
ROI_SCALE = 1.5          # RectTransformationCalculator scale_x/scale_y for both ROIs
MIN_PRESENCE = 0.5       # FaceLandmarksDetectorGraph's default min_detection_confidence
EYE_CORNERS = (33, 263)  # rotation_vector_start/end_keypoint_index of the landmarks' ROI
LANDMARK_IMAGE = "image"                       # the landmark model's input (card)
LANDMARK_OUTPUTS = ("landmarks", "presence_logit")
BLENDSHAPE_POINTS = "points"                   # the blendshape model's input (card)
BLENDSHAPE_OUTPUT = "blendshapes"

# kLandmarksSubsetIdxs in MediaPipe's face_blendshapes_graph.cc: the blendshape model's input points.
BLENDSHAPE_LANDMARKS = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78,
    80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136, 144, 145, 146, 148, 149, 150, 152,
    153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246,
    249, 251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312,
    314, 317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381,
    382, 384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472,
    473, 474, 475, 476, 477)

# kBlendshapeNames in face_blendshapes_graph.cc, in the model's output order (ARKit's names; "Left" and
# "Right" are the person's). Index 0 "_neutral" is not an expression (MediaPipe: "ignore it").
BLENDSHAPE_NAMES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff",
    "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight")
BLENDSHAPE_INDEX = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}


@dataclass(frozen=True)
class Roi:
    """A rotated square in image pixels: centre, side, rotation (radians; positive turns the crop's
    x axis from the image's x towards its y, i.e. clockwise on screen)."""
    cx: float
    cy: float
    side: float
    rotation: float = 0.0


def _normalize_radians(angle: float) -> float:
    """DetectionsToRectsCalculator::NormalizeRadians: into [-pi, pi)."""
    return float(angle - 2 * np.pi * np.floor((angle + np.pi) / (2 * np.pi)))


def _rotation(start, end) -> float:
    """MediaPipe's target_angle 0 - atan2(-(y1 - y0), x1 - x0), normalised."""
    return _normalize_radians(-np.arctan2(-(end[1] - start[1]), end[0] - start[0]))


def roi_from_detection(box, keypoints=None, scale: float = ROI_SCALE) -> Roi:
    """The landmark ROI for a detector box (x, y, w, h) and its keypoints (BlazeFace order: the
    person's right eye, left eye, ...; None: upright)."""
    x, y, w, h = (float(v) for v in box)
    rotation = 0.0 if keypoints is None else _rotation(keypoints[0], keypoints[1])
    return Roi(x + w / 2.0, y + h / 2.0, max(w, h) * scale, rotation)


def roi_from_landmarks(landmarks: np.ndarray, scale: float = ROI_SCALE) -> Roi:
    """The next frame's ROI from (478, >=2) image-pixel landmarks (MediaPipe's tracking ROI)."""
    pts = np.asarray(landmarks, np.float64)[:, :2]
    lo, hi = pts.min(0), pts.max(0)
    rotation = _rotation(pts[EYE_CORNERS[0]], pts[EYE_CORNERS[1]])
    return Roi(float(lo[0] + hi[0]) / 2.0, float(lo[1] + hi[1]) / 2.0, float(max(hi - lo)) * scale, rotation)


# BlazeFace's six keypoints (core/blazeface.py's order: the person's right eye, left eye, nose tip,
# mouth centre, right and left ear tragion) as face-mesh landmark indices (MediaPipe's canonical mesh):
# each eye's two corners, the nose tip, the inner lips, the tragions
MESH_KEYPOINTS = ((33, 133), (362, 263), (1,), (13, 14), (234,), (454,))


def keypoints_from_landmarks(landmarks: np.ndarray) -> tuple:
    """The detector's six keypoints ((x, y) image pixels) from (478, >=2) landmarks: a face followed
    by its landmarks keeps what the crops (roll) and the mouth patches read from keypoints."""
    pts = np.asarray(landmarks, np.float64)[:, :2]
    return tuple(tuple(float(v) for v in pts[list(idx)].mean(0)) for idx in MESH_KEYPOINTS)


def box_relation(box, landmarks: np.ndarray) -> tuple:
    """Where the detector's box (x, y, w, h) lies relative to the landmarks' bounding box (offsets
    and sizes in its units): kept from a frame with a detection, it gives the box on frames where
    only the landmarks follow the face (box_from_landmarks), so tracks and crops see the same box."""
    pts = np.asarray(landmarks, np.float64)[:, :2]
    (lx, ly), (hx, hy) = pts.min(0), pts.max(0)
    lw, lh = max(hx - lx, 1e-6), max(hy - ly, 1e-6)
    x, y, w, h = (float(v) for v in box)
    return (x - lx) / lw, (y - ly) / lh, w / lw, h / lh


def box_from_landmarks(landmarks: np.ndarray, relation: tuple) -> tuple[int, int, int, int]:
    """The detector-like box (x, y, w, h) of a face followed by its landmarks (box_relation's inverse)."""
    pts = np.asarray(landmarks, np.float64)[:, :2]
    (lx, ly), (hx, hy) = pts.min(0), pts.max(0)
    lw, lh = hx - lx, hy - ly
    rx, ry, rw, rh = relation
    return (int(round(lx + rx * lw)), int(round(ly + ry * lh)), max(1, int(round(rw * lw))),
            max(1, int(round(rh * lh))))


def crop_to_image_matrix(roi: Roi, size: int = LANDMARK_INPUT) -> np.ndarray:
    """2x3 affine matrix taking crop pixel coordinates (u, v) to image pixels."""
    c, s = np.cos(roi.rotation), np.sin(roi.rotation)
    k = roi.side / size
    # p = centre + R @ (k * (u, v) - side / 2)
    return np.array([[c * k, -s * k, roi.cx - (c - s) * roi.side / 2.0],
                     [s * k, c * k, roi.cy - (s + c) * roi.side / 2.0]])


def crop_roi(rgb: np.ndarray, roi: Roi, size: int = LANDMARK_INPUT) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (size, size, 3) float32 in [0, 1]: the ROI warped upright (MediaPipe's
    ImageToTensor on CPU: bilinear, border replicated)."""
    import cv2

    require_rgb(rgb)
    to_crop = cv2.invertAffineTransform(crop_to_image_matrix(roi, size))
    patch = cv2.warpAffine(rgb, to_crop, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return patch.astype(np.float32) * np.float32(1.0 / 255.0)


def project_landmarks(crop_landmarks: np.ndarray, roi: Roi, size: int = LANDMARK_INPUT) -> np.ndarray:
    """(N, 3) landmarks in crop pixels (the model's output) -> (N, 3) in image pixels (z in the same scale)."""
    pts = np.asarray(crop_landmarks, np.float64).reshape(-1, 3)
    m = crop_to_image_matrix(roi, size)
    out = np.empty_like(pts)
    out[:, :2] = pts[:, :2] @ m[:, :2].T + m[:, 2]
    out[:, 2] = pts[:, 2] * roi.side / size
    return out


def blendshape_input(landmarks: np.ndarray) -> np.ndarray:
    """(478, >=2) image-pixel landmarks -> the blendshape model's (1, 146, 2) float32 input."""
    return np.ascontiguousarray(np.asarray(landmarks)[list(BLENDSHAPE_LANDMARKS), :2], np.float32)[None]


def presence(logit) -> float:
    return float(1.0 / (1.0 + np.exp(-float(np.asarray(logit).reshape(-1)[0]))))


@dataclass
class FaceLandmarks:
    roi: Roi                    # the crop the landmarks were computed in
    landmarks: np.ndarray       # (478, 3) image pixels (x, y; z relative, same scale)
    presence: float             # [0, 1]: the model's confidence that the crop holds a face
    blendshapes: np.ndarray | None = None   # (52,) in BLENDSHAPE_NAMES order; None: no blendshape model

    @property
    def present(self) -> bool:
        return self.presence >= MIN_PRESENCE

    def next_roi(self) -> Roi:
        """Where to look for this face in the next frame (MediaPipe runs its detector only without one)."""
        return roi_from_landmarks(self.landmarks)

    def blendshape(self, name: str) -> float:
        return float(self.blendshapes[BLENDSHAPE_INDEX[name]])


class FaceLandmarker:
    """Landmarks (and blendshapes) for given ROIs: one landmark model call for all faces (batched),
    one blendshape model call per face (that model takes batch 1)."""

    def __init__(self, landmark_model, blendshape_model=None):
        names = landmark_model.card.output_names()
        if sorted(names) != sorted(LANDMARK_OUTPUTS) or landmark_model.card.input_names() != [LANDMARK_IMAGE]:
            raise ValueError(f"landmark model '{landmark_model.card.path}' has inputs "
                             f"{landmark_model.card.input_names()} and outputs {names}; expected {LANDMARK_IMAGE} -> "
                             f"{', '.join(LANDMARK_OUTPUTS)} (a face_landmarks card from emo_convert_face_landmarker)")
        if blendshape_model is not None and (blendshape_model.card.input_names() != [BLENDSHAPE_POINTS]
                                             or blendshape_model.card.output_names() != [BLENDSHAPE_OUTPUT]):
            raise ValueError(f"blendshape model '{blendshape_model.card.path}' is not a face_blendshapes card "
                             f"({BLENDSHAPE_POINTS} -> {BLENDSHAPE_OUTPUT}) from emo_convert_face_landmarker")
        self.landmark_model, self.blendshape_model = landmark_model, blendshape_model

    def run(self, rgb: np.ndarray, rois) -> list[FaceLandmarks]:
        rois = list(rois)
        if not rois:
            return []
        res = self.landmark_model.run({LANDMARK_IMAGE: np.stack([crop_roi(rgb, roi) for roi in rois])})
        marks = res["landmarks"].reshape(len(rois), NUM_LANDMARKS, 3)
        logits = res["presence_logit"].reshape(len(rois))
        out = []
        for roi, crop_marks, logit in zip(rois, marks, logits):
            pts = project_landmarks(crop_marks, roi)
            face = FaceLandmarks(roi, pts, presence(logit))
            if self.blendshape_model is not None:
                face.blendshapes = self.blendshape_model.run({BLENDSHAPE_POINTS: blendshape_input(pts)})[
                    BLENDSHAPE_OUTPUT].reshape(-1)
            out.append(face)
        return out

    def release(self):
        for model in (self.landmark_model, self.blendshape_model):
            if model is not None and hasattr(model, "release"):
                model.release()


def _inside(point, roi: Roi) -> bool:
    """Whether an image point lies in the (rotated) square of roi."""
    c, s = np.cos(roi.rotation), np.sin(roi.rotation)
    dx, dy = point[0] - roi.cx, point[1] - roi.cy
    return abs(c * dx + s * dy) <= roi.side / 2 and abs(-s * dx + c * dy) <= roi.side / 2


class LandmarkTracking:
    """MediaPipe's face landmarker loop over a video: each face's landmarks give its ROI in the next
    frame, and the detector runs only where that is not enough: while nothing is tracked, in a frame
    where a tracked face was lost (its presence fell below MIN_PRESENCE; the same frame is searched
    again), and every `detect_every` frames (0: never while every track holds) to find faces that
    came into view. (MediaPipe runs its detector whenever fewer than num_faces are tracked: with 8
    allowed, every frame.) A detection whose centre lies in a tracked face's ROI is that face."""

    def __init__(self, detector, landmarker: FaceLandmarker, max_faces: int = 8, detect_every: int = 3):
        self.detector, self.landmarker = detector, landmarker
        self.max_faces, self.detect_every = max_faces, detect_every
        self.rois: list[Roi] = []
        self.since_detect = 0
        self.detector_runs = 0

    def reset(self):
        self.rois, self.since_detect = [], 0

    def step(self, rgb: np.ndarray) -> list[FaceLandmarks]:
        """One frame -> the faces present in it (landmarks, blendshapes), tracked ones first."""
        faces = [f for f in self.landmarker.run(rgb, self.rois) if f.present]
        lost = not self.rois or len(faces) < len(self.rois)
        due = self.detect_every > 0 and self.since_detect + 1 >= self.detect_every
        if lost or due:
            self.detector_runs += 1
            self.since_detect = 0
            tracked = [f.next_roi() for f in faces]
            new = [d for d in self.detector.detect(rgb)
                   if not any(_inside((d.x + d.w / 2, d.y + d.h / 2), r) for r in tracked)]
            rois = [roi_from_detection(d.box, d.keypoints) for d in new[:max(0, self.max_faces - len(faces))]]
            faces += [f for f in self.landmarker.run(rgb, rois) if f.present]
        else:
            self.since_detect += 1
        self.rois = [f.next_roi() for f in faces]
        return faces
