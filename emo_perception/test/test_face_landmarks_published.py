"""face_landmarks on: the face pipeline gives every face MediaPipe's 52 blendshapes and a head pose from
its landmarks, the messages carry them (and read without them), and the setting is refused where it
cannot take effect."""
import collections
import dataclasses
import itertools
import types

import numpy as np
import pytest

from emo_perception import conversions
from emo_perception.core.face_landmarks import BLENDSHAPE_INDEX, BLENDSHAPE_NAMES
from emo_perception.core.head_pose import head_pose_degrees
from emo_perception.recordings.sample_media import astronaut_head, background, place_face, talking_head
from emo_perception.runtime.build import build_face_pipeline, model_requests
from emo_perception.runtime.config import FaceConfig
from emo_perception.runtime.params import ConfigError


@pytest.fixture(scope="module")
def pipelines():
    # stills of unrelated poses one after another: each frame is detected on its own (no following, which
    # would start each from the previous still's landmarks)
    still = dict(detect_every=1, detect_async=False)
    with_marks, without = build_face_pipeline(FaceConfig(face_landmarks=True, **still)), \
        build_face_pipeline(FaceConfig(**still))
    yield with_marks, without
    with_marks.release(), without.release()


def _scene(source, roll=0.0, centre=(640, 360)):
    frame = background(1280, 720)
    place_face(frame, source, centre, 200, roll)
    return frame


_STAMPS = collections.defaultdict(itertools.count)


def _one_face(pipeline, frame):
    # each pipeline's own clock, 0.1 s per frame (a stamp further than 1 s would be held as a time jump)
    faces = pipeline.process(frame, 0.1 * next(_STAMPS[id(pipeline)])).faces
    assert len(faces) == 1, faces
    return faces[0]


def test_every_face_gets_blendshapes_and_a_head_pose_and_nothing_else_changes(pipelines):
    with_marks, without = pipelines
    smiling = _scene(astronaut_head())
    a, b = _one_face(with_marks, smiling), _one_face(without, smiling)
    assert b.blendshapes is None and b.head_pose is None and without.blendshape_names == ()
    assert with_marks.blendshape_names == BLENDSHAPE_NAMES and a.blendshapes.shape == (52,)
    assert a.blendshapes[BLENDSHAPE_INDEX["mouthSmileLeft"]] > 0.7 and a.blendshapes[BLENDSHAPE_INDEX["jawOpen"]] < 0.1
    # the landmarker adds to a face; the detection, crop and face model are the same
    assert a.box == b.box and a.track_id == b.track_id
    assert np.array_equal(a.embedding, b.embedding) and a.valence == b.valence

    frown = _one_face(with_marks, _scene(talking_head(0.0, smile=-1.0)))
    assert frown.blendshapes[BLENDSHAPE_INDEX["mouthSmileLeft"]] < 0.1 < frown.blendshapes[
        BLENDSHAPE_INDEX["mouthFrownLeft"]]


def test_head_pose_follows_roll_and_mirroring(pipelines):
    with_marks, _ = pipelines
    upright = _one_face(with_marks, _scene(astronaut_head())).head_pose
    # counter-clockwise on screen (place_face's roll) is a tilt to the person's right shoulder: roll > 0
    for roll in (20.0, -20.0):
        tilted = _one_face(with_marks, _scene(astronaut_head(), roll)).head_pose
        assert tilted[2] - upright[2] == pytest.approx(roll, abs=4.0), (upright, tilted)
    # a mirrored face turns and tilts the other way, and looks up or down as much
    frame = _scene(astronaut_head())
    mirrored = _one_face(with_marks, np.ascontiguousarray(frame[:, ::-1])).head_pose
    assert mirrored[0] == pytest.approx(-upright[0], abs=4.0) and mirrored[2] == pytest.approx(-upright[2], abs=2.0)
    assert mirrored[1] == pytest.approx(upright[1], abs=4.0)
    assert all(abs(v) < 20 for v in upright), upright      # she faces the camera


def test_head_pose_of_a_face_turned_by_a_perspective_warp_has_the_turn_sign(pipelines):
    import cv2

    with_marks, _ = pipelines
    frame = _scene(astronaut_head())
    h, w = frame.shape[:2]
    src = np.float32([[440, 160], [840, 160], [840, 560], [440, 560]])
    yaws = []
    for shrink in (-120, -60, 0, 60, 120):
        # the image's right edge shorter (shrink > 0: further away) or taller: the face turned
        dst = src + np.float32([[0, 0], [0, shrink], [0, -shrink], [0, 0]])
        warped = cv2.warpPerspective(frame, cv2.getPerspectiveTransform(src, dst), (w, h),
                                     borderMode=cv2.BORDER_REPLICATE)
        yaws.append(_one_face(with_marks, warped).head_pose[0])
    # the right side further away: the face's own left recedes, so it turns to its left (yaw > 0); a
    # flat photo's turn reads small (measured -6.7 .. +10.3 degrees): ordinal, as docs/face_detection.md says
    assert all(b > a for a, b in zip(yaws, yaws[1:])) and yaws[-1] - yaws[0] > 10, yaws


def test_head_pose_needs_478_landmarks():
    with pytest.raises(ValueError, match="478, 3"):
        head_pose_degrees(np.zeros((10, 3)))


def test_messages_carry_blendshapes_and_head_pose_and_older_ones_read_without(pipelines):
    from std_msgs.msg import Header

    with_marks, without = pipelines
    frame = _scene(astronaut_head())
    face = _one_face(with_marks, frame)
    msg = conversions.face_array_to_msg([face], Header(), "m@1", (1280, 720), 0.01, (), with_marks.blendshape_names)
    assert list(msg.blendshape_names) == list(BLENDSHAPE_NAMES)
    assert np.allclose(msg.faces[0].blendshapes, face.blendshapes)
    assert (msg.faces[0].head_yaw, msg.faces[0].head_pitch, msg.faces[0].head_roll) == pytest.approx(face.head_pose,
                                                                                                     abs=1e-4)
    back = conversions.face_frame_from_msg(msg).faces[0]
    assert np.allclose(back.blendshapes, face.blendshapes) and back.head_pose == pytest.approx(face.head_pose, abs=1e-4)

    plain = conversions.face_array_to_msg([_one_face(without, frame)], Header(), "m@1", (1280, 720))
    assert list(plain.faces[0].blendshapes) == [] and np.isnan(plain.faces[0].head_yaw)
    assert conversions.face_frame_from_msg(plain).faces[0].blendshapes is None
    # a bag recorded before the fields existed (rosbags gives the bag's own message definition)
    old_face = types.SimpleNamespace(**{k: getattr(plain.faces[0], k) for k in (
        "track_id", "box", "detection_confidence", "track_age", "embedding", "expression_probabilities",
        "valence", "arousal")})
    old = types.SimpleNamespace(header=plain.header, model_id="m@1", image_width=1280, faces=[old_face])
    read = conversions.face_frame_from_msg(old).faces[0]
    assert read.blendshapes is None and read.head_pose is None and np.isnan(read.mouth_activity)


def test_face_landmarks_is_refused_where_it_cannot_take_effect_and_planned_for_tensorrt():
    with pytest.raises(ConfigError, match="parameter 'face_landmarks' is true; it needs face_source 'detector'"):
        FaceConfig(face_landmarks=True, face_source="hri").check()
    with pytest.raises(ConfigError, match="parameter 'lip_source' is 'landmarks'; it needs face_landmarks: true"):
        FaceConfig(lip_source="landmarks").check()
    assert FaceConfig(face_landmarks=True).lips_from_landmarks and not FaceConfig().lips_from_landmarks
    assert not FaceConfig(face_landmarks=True, lip_source="keypoints").lips_from_landmarks
    from emo_perception.runtime import load_configs

    configs = load_configs(None)
    configs["face_embedding_node"] = dataclasses.replace(configs["face_embedding_node"], face_landmarks=True)
    names = [r.card_path.stem for r in model_requests(configs) if r.fp16_only]
    assert names == ["face_landmarks_detector", "face_blendshapes"]


@pytest.mark.ros
def test_the_face_node_publishes_named_blendshapes_and_head_pose_with_face_landmarks():
    from emo_perception_msgs.msg import FaceEmbeddingArray

    from emo_perception.nodes.media_sources import CameraSource
    from media import demo_frame
    from node_harness import Harness, NodeProcess

    proc = NodeProcess("face_embedding_node", "-p", "face_landmarks:=true")
    h = Harness()
    try:
        out = h.collect(FaceEmbeddingArray, "faces/embeddings")
        h.wait_for(lambda: h.node.count_subscribers("image") > 0, 60, "the face node")
        cam = CameraSource(h.node, [demo_frame()], rate=15.0, topic="image")
        h.wait_for(lambda: len(out) >= 5, 30, "five FaceEmbeddingArray messages")
        cam.timer.cancel()
    finally:
        h.close()
        proc.stop()
    msg = out[-1]
    assert list(msg.blendshape_names) == list(BLENDSHAPE_NAMES) and len(msg.faces) == 1
    face = msg.faces[0]
    assert len(face.blendshapes) == 52 and face.blendshapes[BLENDSHAPE_INDEX["mouthSmileLeft"]] > 0.7
    assert all(np.isfinite(v) and abs(v) < 30 for v in (face.head_yaw, face.head_pitch, face.head_roll))


def test_lip_activity_from_the_jaw_tells_the_speaker_from_the_listener():
    from emo_perception.recordings.sample_media import two_person_clip

    frames, _, speaker = two_person_clip(4.0, 15.0, seed=3)     # the clip with the most listener head motion
    pipeline = build_face_pipeline(FaceConfig(face_landmarks=True))     # lip_source auto: the landmarks
    activity = {0: [], 1: []}
    for k, frame in enumerate(frames):
        faces = sorted(pipeline.process(frame, k / 15.0).faces, key=lambda f: f.box[0])
        for side, f in enumerate(faces if len(faces) == 2 else []):
            if np.isfinite(f.mouth_activity):
                activity[0 if side == speaker else 1].append(f.mouth_activity)
    pipeline.release()
    talking, listening = np.mean(activity[0]), np.mean(activity[1])
    assert len(activity[0]) > 40 and len(activity[1]) > 40
    # on the scale of the keypoints' measure (the fusion's min_activity 0.04 holds): measured 0.11 / 0.01
    assert talking > 0.04 > listening and talking > 4 * listening, (talking, listening)


def test_face_prior_blendshapes_gives_the_faces_valence_and_the_fusion_says_so(pipelines, bundles):
    from emo_perception.core.blendshape_prior import blendshape_valence_arousal
    from emo_perception.core.fusion_pipeline import FaceFrame, FusionPipeline, PriorMode

    with_marks, _ = pipelines
    shapes_prior = build_face_pipeline(FaceConfig(face_landmarks=True, face_prior="blendshapes"))
    assert (shapes_prior.affect_source, with_marks.affect_source) == ("blendshapes", "circumplex")
    smile, frown = (_one_face(shapes_prior, _scene(src)) for src in (astronaut_head(), talking_head(0.0, smile=-1.0)))
    assert (smile.valence, smile.arousal) == pytest.approx(tuple(blendshape_valence_arousal(smile.blendshapes)))
    assert smile.valence > 0.6 and frown.valence < -0.2          # the teacher's circumplex: 0.40 and 0.30
    assert np.array_equal(smile.expression_probabilities, _one_face(with_marks, _scene(astronaut_head()))
                          .expression_probabilities)
    shapes_prior.release()

    # the fusion's label names it: prior+blendshape_prior (the message carries the source; older bags: '')
    from std_msgs.msg import Header

    msg = conversions.face_array_to_msg([smile], Header(), "teacher@1", (1280, 720), 0.0, (), BLENDSHAPE_NAMES,
                                        "blendshapes")
    frame = conversions.face_frame_from_msg(msg)
    assert frame.affect_source == "blendshapes"
    fusion = FusionPipeline(PriorMode())
    for k in range(12):
        fusion.add_face(FaceFrame(k * 0.04, "", "teacher@1", [smile], 1280, frame.affect_source))
    steps = fusion.ready(flush=True)
    assert steps and fusion.model_id == "prior+blendshape_prior"
    assert FusionPipeline(PriorMode()).model_id == "prior"

    # where it cannot take effect: refused at start-up, one line naming the parameter
    with pytest.raises(ConfigError, match="parameter 'face_prior' is 'blendshapes'; it needs face_landmarks"):
        FaceConfig(face_prior="blendshapes").check()
    with pytest.raises(ConfigError, match="gives its own valence/arousal"):
        build_face_pipeline(FaceConfig(face_landmarks=True, face_prior="blendshapes",
                                       face_model=str(bundles["face_encoder"].path)))


# FaceEmbedding(Array) as robots recorded them before the blendshapes (emo_perception_msgs at 8105c5c)
_OLD_FACE = """string track_id
sensor_msgs/RegionOfInterest box
float32 detection_confidence
uint32 track_age
float32[] embedding
float32[] expression_probabilities
float32 valence
float32 arousal
float32 mouth_activity
"""
_OLD_ARRAY = """std_msgs/Header header
string model_id
uint32 image_width
uint32 image_height
float32 processing_time
string[] expression_labels
FaceEmbedding[] faces
"""


def test_a_bag_with_old_face_embeddings_still_evaluates_its_camera(tmp_path):
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_types_from_msg, get_typestore

    from emo_perception.eval.bags import BagError, read_messages
    from emo_perception.eval.evaluate import AFFECT, KINDS
    from emo_perception.runtime.bag_types import STORE

    old = get_typestore(STORE)
    old.register({**get_types_from_msg(_OLD_FACE, "emo_perception_msgs/msg/FaceEmbedding"),
                  **get_types_from_msg(_OLD_ARRAY, "emo_perception_msgs/msg/FaceEmbeddingArray")})
    T = old.types
    header = T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=5, nanosec=0), frame_id="cam")
    face = T["emo_perception_msgs/msg/FaceEmbedding"](
        track_id="f0", box=T["sensor_msgs/msg/RegionOfInterest"](x_offset=1, y_offset=2, height=3, width=4,
                                                                  do_rectify=False),
        detection_confidence=0.9, track_age=1, embedding=np.zeros(4, np.float32),
        expression_probabilities=np.zeros(7, np.float32), valence=0.1, arousal=0.2, mouth_activity=0.0)
    faces = T["emo_perception_msgs/msg/FaceEmbeddingArray"](header=header, model_id="teacher@1", image_width=64,
                                                             image_height=48, processing_time=0.01,
                                                             expression_labels=[], faces=[face])
    image = T["sensor_msgs/msg/Image"](header=header, height=2, width=2, encoding="rgb8", is_bigendian=0, step=6,
                                       data=np.zeros(12, np.uint8))
    bag = tmp_path / "old_bag"
    with Writer(bag, version=8, storage_plugin=StoragePlugin.SQLITE3) as w:
        conns = {"faces/embeddings": w.add_connection("faces/embeddings", "emo_perception_msgs/msg/FaceEmbeddingArray",
                                                      typestore=old),
                 "image": w.add_connection("image", "sensor_msgs/msg/Image", typestore=old)}
        face_cdr = old.serialize_cdr(faces, "emo_perception_msgs/msg/FaceEmbeddingArray")
        for k in range(3):
            w.write(conns["faces/embeddings"], 10 + k, face_cdr)
            w.write(conns["image"], 11 + k, old.serialize_cdr(image, "sensor_msgs/msg/Image"))
    # what the evaluation decodes (camera, microphone, annotations): every image, nothing stops it
    read = list(read_messages(bag, types={AFFECT, *KINDS}))
    assert [r[0] for r in read] == ["image"] * 3 and read[0][3].width == 2
    # the old face messages themselves do not decode with today's definition: said, not misread
    with pytest.raises(BagError, match="faces/embeddings"):
        list(read_messages(bag))
