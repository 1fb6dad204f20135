"""Frame -> tracked faces with embeddings and expression: the face node's one call into the core."""
from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass

import numpy as np

from .blazeface import eye_roll_degrees
from .circumplex import expression_to_valence_arousal, softmax
from .face_crop import crop_faces
from .face_detection import FaceDetector
from .lip_activity import LipActivity
from .stream_time import HELD, JUMPS, OLDER, TIME_JUMP_S, StampOrder
from .tracking import IouTracker

Box = tuple[int, int, int, int]   # x, y, w, h in image pixels
FACE_INPUT = "face"   # the face model's input: (batch, 1, S, S) grey crops (core/face_crop.py)
MAX_CAMERAS = 8       # per-camera states kept; a ninth frame_id makes the least recently seen one forgotten


@dataclass
class FaceResult:
    track_id: str
    box: Box                              # clipped to the image
    detection_confidence: float
    track_age: int
    embedding: np.ndarray                 # (E,)
    expression_probabilities: np.ndarray  # (7,)
    valence: float
    arousal: float
    keypoints: tuple | None = None        # detector keypoints in image pixels (blazeface: eyes, nose, mouth, ears)
    roll: float = 0.0                     # head roll (degrees) the crop was levelled by
    mouth_activity: float = float("nan")  # lip movement since the track's previous frame (lip_activity.py)


@dataclass
class FaceFrameResult:
    faces: list                   # FaceResult, one per face found (may be empty)
    time_jump: str | None = None  # one log line when this frame started a new time base


@dataclass
class CameraState:
    """What one camera's frames carry from frame to frame (keyed by the image's frame_id): tracks,
    lip activity and stamp order never mix two cameras."""
    tracker: IouTracker
    lips: LipActivity
    order: StampOrder


def face_crop_size(card) -> int:
    """The crop side S the face model takes, from its card's 'face' input (batch, 1, S, S);
    ValueError naming the card for an input the crops cannot be made for."""
    spec = next((t for t in card.inputs if t["name"] == FACE_INPUT), None)
    shape = list(spec["shape"]) if spec else []
    if len(shape) != 4 or shape[1] != 1 or not isinstance(shape[2], int) or shape[2] != shape[3] or shape[2] < 8:
        raise ValueError(f"face model card '{card.path}': input '{FACE_INPUT}' is {spec and spec['shape']}; "
                         "expected (batch, 1, S, S): square grey crops of a fixed size S >= 8 (core/face_crop.py)")
    return shape[2]


class FrameOutOfOrder(ValueError):
    """A frame older than the previous one (but not so old that the time base changed): dropped."""


class FrameHeld(ValueError):
    """A frame whose stamp would start a new time base: not processed; the next frame says whether
    the time base changed (tracks reset) or this was one bad stamp (dropped, tracks kept)."""


class FacePipeline:
    """detect -> track -> crop -> encode (one batched model call for all faces)."""

    def __init__(self, detector: FaceDetector, model, tracker: IouTracker, max_faces: int = 8,
                 jump_threshold_s: float = TIME_JUMP_S, align_roll: bool = True):
        self.detector, self.model, self.tracker, self.max_faces = detector, model, tracker, max_faces
        self.align_roll = align_roll   # level the eyes before cropping (detectors with keypoints)
        self.lips = LipActivity()
        self.order = StampOrder(jump_threshold_s)
        self.bad_stamp = None   # what the latest frame found out about a held stamp (one log line), else None
        # frame_id -> CameraState, most recently seen last; tracker, lips and order above are the
        # current frame's camera's (_use_camera)
        self.cameras: OrderedDict[str, CameraState] = OrderedDict()
        self.counts = Counter()
        self.crop_size = face_crop_size(model.card)   # the card's word, checked against the model at load
        names = model.card.output_names()
        if "embedding" not in names or "expression_logits" not in names:
            raise ValueError(f"face model '{model.card.path}' outputs {names}; "
                             "expected 'embedding' and 'expression_logits' (an expression_teacher or face_encoder)")

    def release(self):
        release_model(self.model)

    def _admit(self, stamp: float) -> str | None:
        """Stamp order shared by both entries (StampOrder.admit: a frame that would start a new time
        base waits for the next one): FrameOutOfOrder, FrameHeld, or the jump text (None if none)."""
        last = self.order.last
        verdict = self.order.admit(stamp)
        self.bad_stamp = None
        if self.order.bad_stamp is not None:
            self.counts["bad_stamps"] += 1
            self.bad_stamp = (f"frame stamped {self.order.bad_stamp:.3f} s was one bad stamp (the frames around it "
                              f"are at {last:.3f} and {stamp:.3f} s): dropped, tracks kept")
        if verdict == OLDER:
            self.counts["frames_out_of_order"] += 1
            raise FrameOutOfOrder(f"frame at {stamp:.3f} s is older than the previous one ({self.order.last:.3f} s)")
        if verdict == HELD:
            self.counts["frames_held"] += 1
            raise FrameHeld(f"frame at {stamp:.3f} s is more than {self.order.threshold_s:.3f} s from the previous "
                            f"one ({self.order.last:.3f} s): held until the next frame confirms a new time base")
        if verdict in JUMPS:
            self.counts["time_jumps"] += 1
            return self.order.jump
        return None

    def _use_camera(self, frame_id: str):
        """Make tracker, lips and order those of the camera `frame_id` (new ones on its first frame;
        the first camera keeps the ones given). At most MAX_CAMERAS are kept."""
        cam = self.cameras.get(frame_id)
        if cam is None:
            cam = CameraState(self.tracker, self.lips, self.order) if not self.cameras else \
                CameraState(self.tracker.spawn(), LipActivity(), StampOrder(self.order.threshold_s))
            if len(self.cameras) >= MAX_CAMERAS:
                self.cameras.popitem(last=False)
                self.counts["cameras_forgotten"] += 1
            self.cameras[frame_id] = cam
        self.cameras.move_to_end(frame_id)
        self.tracker, self.lips, self.order = cam.tracker, cam.lips, cam.order

    def track_count(self) -> int:
        """Live tracks over all cameras."""
        return sum(len(c.tracker.tracks) for c in self.cameras.values()) if self.cameras else len(self.tracker.tracks)

    def _encode(self, crops: np.ndarray):
        """(N, 1, S, S) crops (S: crop_size) -> embeddings, expression probabilities, (valence, arousal)."""
        outputs = self.model.run({FACE_INPUT: crops})
        probs = softmax(outputs["expression_logits"].astype(np.float64)).astype(np.float32)
        va = outputs.get("valence_arousal")
        if va is None:
            va = expression_to_valence_arousal(probs)
        return outputs["embedding"], probs, va

    def process_aligned(self, faces: list, stamp: float) -> FaceFrameResult:
        """Faces found by someone else (ROS4HRI's hri_face_detect): (id, aligned face RGB, box in
        the source image or None, confidence) per face. Their ids are the track ids; no detection."""
        jump = self._admit(stamp)
        self.counts["frames_processed"] += 1
        if not faces:
            return FaceFrameResult([], jump)
        crops = np.concatenate([crop_faces(rgb, [(0, 0, rgb.shape[1], rgb.shape[0])], self.crop_size, margin=0.0)
                                for _, rgb, _, _ in faces])
        emb, probs, va = self._encode(crops)
        return FaceFrameResult([FaceResult(fid, box or (0, 0, 0, 0), float(conf), 1, emb[i], probs[i],
                                           float(va[i, 0]), float(va[i, 1]))
                                for i, (fid, _, box, conf) in enumerate(faces)], jump)

    def process(self, rgb: np.ndarray, stamp: float, frame_id: str = "") -> FaceFrameResult:
        """Raises FrameOutOfOrder for a frame somewhat older than the previous one, FrameHeld for one
        further than the jump threshold from it (the next frame decides: a new time base, tracks
        reset, or one bad stamp, dropped) and face_detection.DetectionError for a frame the
        detector cannot work on. `frame_id`: the camera; each has its own tracks and stamp order
        (ids stay unique)."""
        self._use_camera(frame_id)
        jump = self._admit(stamp)
        if jump:
            self.tracker.reset()
            self.lips.reset()
        try:
            dets = self.detector.detect(rgb)[: self.max_faces]
        except ValueError:
            self.counts["frames_rejected"] += 1
            raise
        self.counts["frames_processed"] += 1
        h, w = rgb.shape[:2]
        boxes = [_clip(d.box, w, h) for d in dets]
        tracks = self.tracker.update(boxes, stamp)
        lips = self.lips.update(rgb, [(t.track_id, d.keypoints) for t, d in zip(tracks, dets)], stamp)
        if not dets:
            return FaceFrameResult([], jump)
        rolls = [0.0 if d.keypoints is None else eye_roll_degrees(d.keypoints) for d in dets]
        emb, probs, va = self._encode(crop_faces(rgb, boxes, self.crop_size, rolls=rolls if self.align_roll else None))
        return FaceFrameResult([FaceResult(t.track_id, boxes[i], dets[i].score, t.age, emb[i], probs[i],
                                           float(va[i, 0]), float(va[i, 1]), dets[i].keypoints,
                                           rolls[i] if self.align_roll else 0.0, lips[t.track_id])
                                for i, t in enumerate(tracks)], jump)


def release_model(model):
    """Free a backend model's memory now (TensorRT: GPU buffers), where the backend can."""
    if model is not None and hasattr(model, "release"):
        model.release()


def _clip(box, w, h):
    x, y, bw, bh = box
    x0, y0 = max(0, x), max(0, y)
    return x0, y0, max(1, min(w, x + bw) - x0), max(1, min(h, y + bh) - y0)


def draw_faces(rgb, faces):
    """Debug overlay: boxes, track ids and face valence/arousal."""
    import cv2

    img = rgb.copy()
    for f in faces:
        x, y, w, h = f.box
        cv2.rectangle(img, (x, y), (x + w, y + h), (0, 255, 0), 2)
        cv2.putText(img, f"{f.track_id} v{f.valence:+.2f} a{f.arousal:+.2f}", (x, max(12, y - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 255, 0), 1)
    return img
