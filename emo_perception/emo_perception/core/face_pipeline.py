"""Frame -> tracked faces with embeddings and expression: the face node's one call into the core."""
from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field

import numpy as np

from .background_detection import BackgroundDetector, PendingDetection, unfollowed
from .blazeface import eye_roll_degrees
from .face_detection import Detection, FaceDetector, detect_in_regions, keeps_square, region_square
from .face_detection import region_detector as make_region_detector
from .blendshape_prior import blendshape_valence_arousal
from .face_landmarks import (BLENDSHAPE_INDEX, Roi, box_from_landmarks, box_relation, keypoints_from_landmarks,
                             roi_from_detection)
from .head_pose import head_pose_degrees
from .face_model_io import NATIVE_INPUT, face_model_io
from .lip_activity import JawActivity, LipActivity
from .stream_time import HELD, JUMPS, OLDER, TIME_JUMP_S, StampOrder
from .tracking import IouTracker, iou

Box = tuple[int, int, int, int]   # x, y, w, h in image pixels
FACE_INPUT = NATIVE_INPUT   # our face models' input: (batch, 1, S, S) grey crops (core/face_crop.py)
MAX_CAMERAS = 8       # per-camera states kept; a ninth frame_id makes the least recently seen one forgotten
REGION_SAME_FACE_IOU = 0.5   # two region detections overlapping this much are one face (detect_every)


@dataclass
class FaceResult:
    track_id: str
    box: Box                              # clipped to the image
    detection_confidence: float
    track_age: int
    embedding: np.ndarray                 # (E,); E = 0 for a model without one (an imported classifier)
    expression_probabilities: np.ndarray  # (K,) in the model's expression_labels order (FER2013: 7)
    valence: float
    arousal: float
    keypoints: tuple | None = None        # detector keypoints in image pixels (blazeface: eyes, nose, mouth, ears)
    roll: float = 0.0                     # head roll (degrees) the crop was levelled by
    mouth_activity: float = float("nan")  # lip movement since the track's previous frame (lip_activity.py)
    expression_labels: tuple = ()         # names of expression_probabilities (the card's); () = FER2013's
    blendshapes: np.ndarray | None = None  # (52,) MediaPipe blendshapes (face_landmarks.BLENDSHAPE_NAMES); None: none
    head_pose: tuple | None = None        # (yaw, pitch, roll) degrees from the landmarks (head_pose.py); None: none


@dataclass
class FaceFrameResult:
    faces: list                   # FaceResult, one per face found (may be empty)
    time_jump: str | None = None  # one log line when this frame started a new time base


@dataclass
class CameraState:
    """What one camera's frames carry from frame to frame (keyed by the image's frame_id): tracks,
    lip activity and stamp order never mix two cameras."""
    tracker: IouTracker
    lips: LipActivity | JawActivity
    order: StampOrder
    followed: tuple = ()         # track ids found in this camera's previous frame (detect_every)
    since_full: int = 0          # frames since the last full-frame detection
    full_next: bool = True       # the next frame gets a full-frame detection (start, a face lost, a time jump)
    # track id -> (its landmarks in the previous frame, box_relation of its last detector box): with the
    # landmarker, detect_every's frames in between follow a face by its landmarks (no detector)
    marks: dict = field(default_factory=dict)
    pending: PendingDetection | None = None   # detect_async: the full detection of this camera's previous frame
    squares: dict = field(default_factory=dict)   # track id -> the region square it was found in last (keeps_square)


def face_crop_size(card) -> int:
    """The crop side S the face model takes, from its card (core/face_model_io.py); ValueError naming
    the card for an input the crops cannot be made for."""
    return face_model_io(card).size


class FrameOutOfOrder(ValueError):
    """A frame older than the previous one (but not so old that the time base changed): dropped."""


class FrameHeld(ValueError):
    """A frame whose stamp would start a new time base: not processed; the next frame says whether
    the time base changed (tracks reset) or this was one bad stamp (dropped, tracks kept)."""


class FacePipeline:
    """detect -> track -> crop -> encode (one batched model call for all faces).

    `detect_every` N > 1: the full-frame detector runs on every N-th frame of a camera; on the frames in
    between each face found in the previous frame is looked for only around where its track is predicted
    (face_detection.detect_in_regions with `region_detector`: BlazeFace on a 96 px square, ~1/20 of the
    full canvas). A face not found there, or no face to follow, makes the next frame a full one, so a
    face that appears is found up to N - 1 frames later and one that is lost costs one frame. With the
    landmarker, a face that had landmarks in the previous frame is followed by them instead (MediaPipe's
    tracking: its next ROI, no detector; the box from where the detector last put it relative to the
    landmarks, the keypoints from the mesh), 3.6 ms less per face here (bench_core --landmarks).

    Followed faces always come from their regions (or landmarks), also on the frames with a full detection,
    whose faces join them only where no followed face is: the keypoints of a face do not switch between the
    full canvas and its region (lip activity reads them; speaker attribution fell to 29-54 % when they did).

    `detect_async`: a full detection due while there are faces to follow runs in a worker thread
    (core/background_detection.py) and the frame is followed meanwhile; the next frame of that camera
    looks around each face it found that no track followed. Only a frame with nothing to follow waits for
    the full detector."""

    def __init__(self, detector: FaceDetector, model, tracker: IouTracker, max_faces: int = 8,
                 jump_threshold_s: float = TIME_JUMP_S, align_roll: bool = True, detect_every: int = 1,
                 region_detector: FaceDetector | None = None, landmarker=None, lips_from_landmarks: bool = False,
                 blendshape_prior: bool = False, detect_async: bool = False):
        self.detector, self.model, self.tracker, self.max_faces = detector, model, tracker, max_faces
        self.detect_async = detect_async and detector is not None
        self.landmarker = landmarker   # face_landmarks.FaceLandmarker: blendshapes and head pose per face; None: none
        # lip activity from the landmarks' jawOpen (JawActivity) instead of the keypoints' patches
        self._lip_kind = JawActivity if lips_from_landmarks and landmarker is not None else LipActivity
        self.detect_every = detect_every
        self.region_detector = region_detector if region_detector is not None else \
            (make_region_detector(detector) if detector is not None and (detect_every > 1 or self.detect_async)
             else None)
        # detect_async's worker (all full detections go through it: they never overlap). In the caller where
        # the regions use the very same detector object (a detector of the user's own), and in offline
        # extraction (use_detector: its detector records answers in call order): the same answers either way
        self.background = BackgroundDetector(detector, threaded=_may_run_beside(detector, self.region_detector)) \
            if self.detect_async else None
        self.camera: CameraState | None = None   # the current frame's camera (_use_camera)
        self.align_roll = align_roll   # level the eyes before cropping (detectors with keypoints)
        self.lips = self._lip_kind()
        self.order = StampOrder(jump_threshold_s)
        self.bad_stamp = None   # what the latest frame found out about a held stamp (one log line), else None
        self.worker_error = None   # detect_async: why the full detection this frame took failed (one line), else None
        # frame_id -> CameraState, most recently seen last; tracker, lips and order above are the
        # current frame's camera's (_use_camera)
        self.cameras: OrderedDict[str, CameraState] = OrderedDict()
        self.counts = Counter()
        # the card's word on crops and outputs (face_model_io.py), checked against the model at load
        self.io = face_model_io(model.card)
        self.crop_size = self.io.size
        self.expression_labels = self.io.expression_labels   # names of expression_probabilities, in order
        self._batch_of_one = next(t for t in model.card.inputs if t["name"] == self.io.input)["shape"][0] == 1
        # faces' valence/arousal from their blendshapes (core/blendshape_prior.py) instead of the circumplex
        self.blendshape_prior = blendshape_prior and landmarker is not None and not self.io.gives_valence_arousal

    def use_detector(self, detector, threaded: bool = True, passes: tuple = ()):
        """Detect with `detector` from now on (offline extraction's recording one); `threaded` False: detect_async's
        full detections run in the caller, the same answers at the same frames (its recorder keeps call order);
        `passes`: its errors that must reach the caller rather than count as one frame's failed detection."""
        self.detector = detector
        if self.background is not None:
            self._close_background()
            self.background = BackgroundDetector(detector, threaded, passes)

    def _close_background(self):
        """Stop the worker; the detections it had not finished are dropped with it."""
        self.background.close()
        for cam in self.cameras.values():
            cam.pending = None

    def release(self):
        if self.background is not None:
            self._close_background()
        release_model(self.model)
        if self.landmarker is not None:
            self.landmarker.release()

    @property
    def affect_source(self) -> str:
        """Where the faces' valence/arousal come from (FaceEmbeddingArray.face_affect_source)."""
        if self.io.gives_valence_arousal:
            return "model"
        return "blendshapes" if self.blendshape_prior else "circumplex"

    @property
    def blendshape_names(self) -> tuple:
        """Names of the faces' blendshapes, in order (() without a landmarker)."""
        from .face_landmarks import BLENDSHAPE_NAMES

        return BLENDSHAPE_NAMES if self.landmarker is not None else ()

    def warm_up(self):
        """Run each network once on blank input (the detector's canvas, the region square, one crop), so
        that the first frame does not pay for their first runs (issue 21: the first estimate). No state
        changes: no tracks, counts or stamps."""
        blank = np.full((self.crop_size * 4, self.crop_size * 4, 3), 128, np.uint8)
        for detector in (self.detector, self.region_detector):
            if detector is not None:
                detector.detect(blank)
        self._encode(self.io.crops(blank, [(0, 0, blank.shape[1], blank.shape[0])]))
        if self.landmarker is not None:
            self.landmarker.run(blank, [Roi(blank.shape[1] / 2, blank.shape[0] / 2, blank.shape[0] / 2)])

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
                CameraState(self.tracker.spawn(), self._lip_kind(), StampOrder(self.order.threshold_s))
            if len(self.cameras) >= MAX_CAMERAS:
                self.cameras.popitem(last=False)
                self.counts["cameras_forgotten"] += 1
            self.cameras[frame_id] = cam
        self.cameras.move_to_end(frame_id)
        self.tracker, self.lips, self.order = cam.tracker, cam.lips, cam.order
        self.camera = cam

    def _detect(self, rgb: np.ndarray, stamp: float) -> list:
        """The frame's detections, best first, each with its landmarks where they found it (else None):
        full-frame, or around the followed faces (detect_every) and, with detect_async, around the new faces
        the previous frame's full detection found."""
        cam = self.camera
        followed = [self.tracker.tracks[t] for t in cam.followed if t in self.tracker.tracks]
        seeds = self._new_faces(rgb)
        due = self.detect_every <= 1 or cam.full_next or not followed or cam.since_full + 1 >= self.detect_every
        full = None     # without the worker: this frame's full detection, whose new faces join it below
        if due:
            cam.since_full, cam.full_next = 0, False
            self.counts["full_detections"] += 1
            if not followed or (self.detect_every <= 1 and not self.detect_async):
                detect = self.background.detect if self.background is not None else self.detector.detect
                return [(d, None) for d in detect(rgb)]
            if self.detect_async:
                # started now, so that it runs while this frame is followed; compared with this frame's faces below
                cam.pending = PendingDetection(self.background.submit(rgb), rgb.shape[:2], [])
            else:
                full = self.detector.detect(rgb)
        else:
            cam.since_full += 1
        try:
            return self._follow(rgb, stamp, followed, seeds, full)
        except Exception:
            cam.pending = None      # its answer would be compared with no face of this frame
            raise

    def _follow(self, rgb, stamp, followed, seeds, full) -> list:
        """The followed faces found again in their regions (or by their landmarks), and the new faces: around
        the previous frame's worker's (`seeds`) or of this frame's full detection (`full`), up to max_faces."""
        cam = self.camera
        by_marks = [t for t in followed if t.track_id in cam.marks] if self.landmarker is not None else []
        regions = [t for t in followed if t not in by_marks]
        found = self._follow_by_landmarks(rgb, by_marks) if by_marks else []
        if regions:
            self.counts["region_detections"] += 1
            squares = [self._square(t, stamp) for t in regions]
            answers = detect_in_regions(self.region_detector, rgb, [t.predicted(stamp) for t in regions],
                                        squares=squares)
            found += [(d, None) for d in answers if d is not None]
            cam.squares = {t.track_id: q for t, q, d in zip(regions, squares, answers) if d is not None}
        else:
            cam.squares = {}
        dets = _distinct(found, [])
        cam.full_next = len(dets) < len(followed)    # a face lost: look at the whole frame next time
        room = self.max_faces - len(dets)            # followed faces first: new ones do not push them out
        if seeds and room > 0:
            seeds = seeds[:room]
            self.counts["new_face_regions"] += len(seeds)
            new = [(d, None) for d in detect_in_regions(self.region_detector, rgb, [d.box for d in seeds])
                   if d is not None]
            dets = sorted(_distinct(new, dets)[:room] + dets, key=lambda f: -f[0].score)
        elif full is not None and room > 0:
            new = [(d, None) for d in unfollowed(full, [o.box for o, _ in dets])]
            dets = sorted(_distinct(new, dets)[:room] + dets, key=lambda f: -f[0].score)
        if cam.pending is not None:
            cam.pending.followed_boxes = [d.box for d, _ in dets]
        return dets

    def _square(self, track, stamp) -> tuple:
        """The region square a followed track is looked for in: its previous one while that still serves."""
        new = region_square(track.predicted(stamp))
        old = self.camera.squares.get(track.track_id)
        return old if old is not None and keeps_square(old, new) else new

    def _new_faces(self, rgb) -> list:
        """detect_async: the faces the previous frame's full detection found that no track followed (it is
        waited for if it is not done yet); [] when there is none."""
        cam = self.camera
        if cam.pending is None:
            return []
        pending, cam.pending = cam.pending, None
        faces, error = self.background.new_faces(pending, rgb.shape[:2])
        if error is not None:
            self.counts["full_detections_failed"] += 1
            self.worker_error = error
        return faces

    def _follow_by_landmarks(self, rgb, tracks) -> list:
        """(Detection, FaceLandmarks) of each track whose face is still in its landmarks' next ROI."""
        self.counts["landmark_follows"] += len(tracks)
        marks = [self.camera.marks[t.track_id] for t in tracks]
        out = []
        for (_, relation), face in zip(marks, self.landmarker.run(rgb, [m.next_roi() for m, _ in marks])):
            if face.present:
                out.append((Detection(*box_from_landmarks(face.landmarks, relation), face.presence,
                                      keypoints_from_landmarks(face.landmarks)), face))
        return out

    def track_count(self) -> int:
        """Live tracks over all cameras."""
        return sum(len(c.tracker.tracks) for c in self.cameras.values()) if self.cameras else len(self.tracker.tracks)

    def _encode(self, crops: np.ndarray):
        """The model's input batch (self.io.crops) -> embeddings, expression probabilities, (valence,
        arousal): the model's own where it gives them, else the circumplex of its probabilities."""
        if self._batch_of_one and len(crops) > 1:    # a model exported for one face at a time
            runs = [self.model.run({self.io.input: crops[i:i + 1]}) for i in range(len(crops))]
            return self.io.read({k: np.concatenate([r[k] for r in runs]) for k in runs[0]}, len(crops))
        return self.io.read(self.model.run({self.io.input: crops}), len(crops))

    def process_aligned(self, faces: list, stamp: float) -> FaceFrameResult:
        """Faces found by someone else (ROS4HRI's hri_face_detect): (id, aligned face RGB, box in
        the source image or None, confidence) per face. Their ids are the track ids; no detection."""
        jump = self._admit(stamp)
        self.counts["frames_processed"] += 1
        if not faces:
            return FaceFrameResult([], jump)
        crops = np.concatenate([self.io.crops(rgb, [(0, 0, rgb.shape[1], rgb.shape[0])], margin=0.0)
                                for _, rgb, _, _ in faces])
        emb, probs, va = self._encode(crops)
        return FaceFrameResult([FaceResult(fid, box or (0, 0, 0, 0), float(conf), 1, emb[i], probs[i],
                                           float(va[i, 0]), float(va[i, 1]), expression_labels=self.expression_labels)
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
            self.camera.followed, self.camera.full_next, self.camera.marks = (), True, {}
            self.camera.pending = None      # faces of the old time base are not looked for
            self.camera.squares = {}
        try:
            found = self._detect(rgb, stamp)[: self.max_faces]
        except ValueError:
            self.counts["frames_rejected"] += 1
            raise
        self.counts["frames_processed"] += 1
        dets = [d for d, _ in found]
        h, w = rgb.shape[:2]
        boxes = [_clip(d.box, w, h) for d in dets]
        tracks = self.tracker.update(boxes, stamp)
        shapes, poses = self._landmarks(rgb, found, tracks)
        if isinstance(self.lips, JawActivity):
            jaw = BLENDSHAPE_INDEX["jawOpen"]
            lips = self.lips.update([(t.track_id, None if shapes[i] is None else float(shapes[i][jaw]))
                                     for i, t in enumerate(tracks)], stamp)
        else:
            lips = self.lips.update(rgb, [(t.track_id, d.keypoints) for t, d in zip(tracks, dets)], stamp)
        self.camera.followed = tuple(t.track_id for t in tracks)
        if not dets:
            return FaceFrameResult([], jump)
        rolls = [0.0 if d.keypoints is None else eye_roll_degrees(d.keypoints) for d in dets]
        emb, probs, va = self._encode(self.io.crops(rgb, boxes, rolls=rolls if self.align_roll else None))
        if self.blendshape_prior:   # no blendshapes (the landmarker found no face in the box): no estimate
            va = np.array([blendshape_valence_arousal(s) if s is not None else (np.nan, np.nan) for s in shapes],
                          np.float32).reshape(-1, 2)
        return FaceFrameResult([FaceResult(t.track_id, boxes[i], dets[i].score, t.age, emb[i], probs[i],
                                           float(va[i, 0]), float(va[i, 1]), dets[i].keypoints,
                                           rolls[i] if self.align_roll else 0.0, lips[t.track_id],
                                           self.expression_labels, shapes[i], poses[i])
                                for i, t in enumerate(tracks)], jump)

    def _landmarks(self, rgb, found, tracks) -> tuple[list, list]:
        """Per detection, its blendshapes and head pose (landmarker; those found by their landmarks
        already have them), or None where there is no landmarker or it found no face in the detection's
        ROI (counted: `landmarks_absent`). Keeps each present face's landmarks for the next frame."""
        if self.landmarker is None:
            return [None] * len(found), [None] * len(found)
        todo = [i for i, (_, marks) in enumerate(found) if marks is None]     # not followed by landmarks
        faces = [marks for _, marks in found]
        for i, face in zip(todo, self.landmarker.run(rgb, [roi_from_detection(found[i][0].box, found[i][0].keypoints)
                                                           for i in todo])):
            faces[i] = face
        shapes, poses, kept = [], [], {}
        for i, face in enumerate(faces):
            if not face.present:
                self.counts["landmarks_absent"] += 1
                shapes.append(None), poses.append(None)
                continue
            shapes.append(np.asarray(face.blendshapes, np.float32) if face.blendshapes is not None else None)
            poses.append(head_pose_degrees(face.landmarks))
            track = tracks[i].track_id
            # the box relation comes from the detector's own boxes; a followed face keeps its track's
            relation = box_relation(found[i][0].box, face.landmarks) if found[i][1] is None else \
                self.camera.marks.get(track, (None, None))[1]
            if relation is not None:
                kept[track] = (face, relation)
        self.camera.marks = kept
        return shapes, poses


def _may_run_beside(detector, regions) -> bool:
    """Whether the full detector may run in a worker while `regions` run in the caller: not the same object, and
    not one TensorRT model (one execution context and stream); ONNX Runtime sessions take calls from two threads."""
    model, region_model = getattr(detector, "model", None), getattr(regions, "model", None)
    shared_engine = model is not None and model is region_model and getattr(model, "backend", "") == "tensorrt"
    return regions is not detector and not shared_engine


def _distinct(found: list, taken: list) -> list:
    """`found` (Detection, landmarks) best first, without those overlapping a better one or one of `taken`
    by REGION_SAME_FACE_IOU or more (two regions that found one face: once)."""
    dets = []
    for d, marks in sorted(found, key=lambda f: -f[0].score):
        if all(iou(d.box, o.box) < REGION_SAME_FACE_IOU for o, _ in dets + taken):
            dets.append((d, marks))
    return dets


def release_model(model):
    """Free a backend model's memory now (TensorRT: GPU buffers), where the backend can."""
    if model is not None and hasattr(model, "release"):
        model.release()


def _clip(box, w, h):
    x, y, bw, bh = box
    x0, y0 = min(max(0, x), w - 1), min(max(0, y), h - 1)   # a face followed past the edge keeps a pixel inside
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
