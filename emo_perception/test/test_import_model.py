"""Bring your own face model (issue 22 item 1): emo_import_model turns an HSEmotion- or EmoNet-shaped ONNX
(stand-ins made here with torch.onnx.export: same input/output names and shapes, nothing downloads) or any
model described by the generic form into a card; with it as face_model the face valence/arousal are the
model's own (the circumplex only for a model of categories alone) and the expression probabilities carry
the card's class names, through the face node's process and the fusion node's AffectArray."""
import dataclasses
import json
import time

import numpy as np
import pytest
from skimage import data

from emo_perception.cli import import_model as cli
from emo_perception.core.circumplex import circumplex_points, expression_to_valence_arousal
from emo_perception.core.face_detection import HaarFaceDetector
from emo_perception.core.face_model_io import face_model_io
from emo_perception.core.face_pipeline import FacePipeline
from emo_perception.core.tracking import IouTracker
from emo_perception.inference import ModelFileError, load_model
from emo_perception.inference.import_model import HSEMOTION_8, ImportModelError, import_face_model
from emo_perception.paths import share_dir
from model_cards import STAND_IN_AROUSAL, emonet_like, hsemotion_like, stand_in_valence

ASTRONAUT = data.astronaut()


def _faces(card_path):
    pipeline = FacePipeline(HaarFaceDetector(), load_model(card_path, "onnxruntime"), IouTracker())
    return pipeline, pipeline.process(ASTRONAUT, 1.0).faces


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory):
    d = tmp_path_factory.mktemp("stand_ins")
    return {"hsemotion-enet_b0_8_va_mtl": hsemotion_like(d),
            "hsemotion-enet_b2_8": hsemotion_like(d, va=False, size=260, name="enet_b2_8"),
            "hsemotion-enet_b0_8_best_afew": hsemotion_like(d, va=False, name="enet_b0_8_best_afew"),
            "emonet-8": emonet_like(d, 8), "emonet-5": emonet_like(d, 5)}


@pytest.mark.parametrize("preset", ["hsemotion-enet_b0_8_va_mtl", "emonet-8", "emonet-5"])
def test_a_model_with_valence_arousal_outputs_gives_the_face_its_own_valence_arousal(stand_ins, preset):
    card = import_face_model(stand_ins[preset], preset=preset)
    pipeline, faces = _faces(card.path)
    assert len(faces) == 1
    io = pipeline.io
    crops = io.crops(ASTRONAUT, [faces[0].box])          # Haar gives no keypoints: no roll
    assert crops.shape == (1, 3, io.size, io.size) and io.size == (224 if preset.startswith("hse") else 256)
    assert faces[0].valence == pytest.approx(float(stand_in_valence(crops)[0]), abs=1e-5)
    assert faces[0].arousal == pytest.approx(STAND_IN_AROUSAL, abs=1e-6)     # the circumplex never gives it
    labels = card.face["expression_labels"]
    assert pipeline.expression_labels == tuple(labels) and len(faces[0].expression_probabilities) == len(labels)
    assert labels[0] == ("Anger" if preset.startswith("hse") else "Neutral") and "AffectNet" in card.face["terms"]
    assert faces[0].embedding.shape == (0,)


def test_a_model_of_categories_alone_gets_the_circumplex_of_its_own_classes(stand_ins):
    card = import_face_model(stand_ins["hsemotion-enet_b2_8"], preset="hsemotion-enet_b2_8")
    pipeline, faces = _faces(card.path)
    f = faces[0]
    assert pipeline.io.size == 260 and pipeline.expression_labels == HSEMOTION_8
    want = expression_to_valence_arousal(f.expression_probabilities, circumplex_points(HSEMOTION_8))
    assert (f.valence, f.arousal) == pytest.approx(tuple(want), abs=1e-6)
    happy, contempt = circumplex_points(["Happiness", "Contempt"])
    assert tuple(happy) == pytest.approx((0.40, 0.20)) and tuple(contempt) == pytest.approx((-0.30, -0.10))


def test_the_generic_form_writes_the_card_the_preset_writes(stand_ins, tmp_path):
    onnx = stand_ins["hsemotion-enet_b0_8_va_mtl"]
    preset = import_face_model(onnx, tmp_path / "preset.json", preset="hsemotion-enet_b0_8_va_mtl")
    generic = import_face_model(onnx, tmp_path / "generic.json", input_size=224, channel_order="rgb",
                                mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225],
                                outputs="logits:output[0:8],valence:output[8],arousal:output[9]", classes=HSEMOTION_8)
    keep = lambda c: {k: v for k, v in c.face.items() if k not in ("source", "terms")}  # noqa: E731
    assert keep(generic) == keep(preset)
    assert generic.onnx == "../" + onnx.parent.name + "/" + onnx.name      # relative to the card, not copied
    assert load_model(tmp_path / "generic.json", "onnxruntime").card.model_id == preset.model_id


@pytest.mark.parametrize("onnx, kwargs, says", [
    ("hsemotion-enet_b0_8_best_afew", {"preset": "hsemotion-enet_b0_8_va_mtl"},
     "output 'output' has shape [None, 8]; the preset expects its last axis to be 10"),
    ("hsemotion-enet_b0_8_va_mtl", {"preset": "emonet-8"}, "has inputs ['input']; expected one image input 'image'"),
    ("hsemotion-enet_b2_8", {"preset": "hsemotion-enet_b0_8_va_mtl", "input_size": 224},
     "input 'input' is float32 ['?', 3, 260, 260]; expected float32 [N, 3, 224, 224]"),
    ("emonet-8", {"preset": "emonet-5"},
     "output 'expression' has shape [None, 8]; the preset expects its last axis to be 5"),
    ("hsemotion-enet_b2_8", {"channel_order": "rgb", "mean": [0, 0, 0], "std": [1, 1, 1],
                             "outputs": "logits:output", "classes": ["joy", "b", "c", "d", "e", "f", "g", "h"]},
     "expression class 'joy' has no point on the circumplex"),
    ("hsemotion-enet_b2_8", {"channel_order": "rgb", "mean": [0, 0, 0], "std": [1, 1, 1],
                             "outputs": "logits:output,valence:va[0]", "classes": HSEMOTION_8},
     "--outputs names 'va' for valence; the model's outputs are ['output']"),
    ("hsemotion-enet_b2_8", {"channel_order": "rgb", "mean": [0.5], "std": [0.5], "outputs": "logits:output"},
     "--mean [0.5] and --std [0.5]: give 3 values each"),
    ("hsemotion-enet_b2_8", {"channel_order": "rgb", "mean": [0, 0, 0], "std": [1, 1, 1], "outputs": "logits:output",
                             "classes": HSEMOTION_8[:7]}, "7 expression_labels for 8 expression columns"),
    ("emonet-8", {"preset": "emonet-8", "outputs": "valence:expression[7:9]"}, "valence takes columns 7..8"),
])
def test_a_model_that_does_not_fit_is_refused_in_one_line_and_no_card_is_written(stand_ins, tmp_path, onnx, kwargs,
                                                                                 says):
    out = tmp_path / "card.json"
    with pytest.raises(ImportModelError) as err:
        import_face_model(stand_ins[onnx], out, **kwargs)
    assert says in str(err.value) and "\n" not in str(err.value)
    assert not out.exists()


def test_the_console_script_writes_the_card_and_reports_a_misfit_with_exit_1(stand_ins, tmp_path, capsys):
    out = tmp_path / "b0.json"
    assert cli.main([str(stand_ins["hsemotion-enet_b0_8_va_mtl"]), "--preset", "hsemotion-enet_b0_8_va_mtl",
                     "--out", str(out), "--crop-margin", "0.1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["card"] == str(out.resolve()) and printed["valence_arousal"] == "the model's"
    assert json.loads(out.read_text())["face"]["crop_margin"] == 0.1
    assert cli.main([str(stand_ins["emonet-8"]), "--preset", "hsemotion-enet_b2_8", "--input-size", "256"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("emo_import_model: ") and "the preset expects one output" in err and "\n" not in err
    assert cli.main([str(tmp_path / "missing.onnx"), "--preset", "emonet-8"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_a_card_whose_onnx_changed_is_refused_at_load(stand_ins, tmp_path):
    onnx = hsemotion_like(tmp_path)
    card = import_face_model(onnx, preset="hsemotion-enet_b0_8_va_mtl")
    hsemotion_like(tmp_path, va=False, name=onnx.stem)     # replaced by another model under the same name
    with pytest.raises(ModelFileError, match="sha256 differs"):
        load_model(card.path, "onnxruntime")


def test_our_own_models_keep_their_contract_and_fer_names():
    card = load_model(share_dir() / "models" / "expression_teacher.json", "onnxruntime").card
    io = face_model_io(card)
    assert io.native and io.size == 64 and io.expression_labels[0] == "angry" and not io.gives_valence_arousal
    with pytest.raises(ValueError, match="face.channels is 'cmyk'"):
        face_model_io(dataclasses.replace(card, face={"input": "face", "channels": "cmyk"}))


def test_the_face_array_message_carries_the_class_names(stand_ins):
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    from emo_perception import conversions

    card = import_face_model(stand_ins["emonet-8"], preset="emonet-8")
    pipeline, faces = _faces(card.path)
    msg = conversions.face_array_to_msg(faces, Header(stamp=Time(sec=1)), card.model_id, (512, 512), 0.01,
                                        pipeline.expression_labels)
    assert list(msg.expression_labels) == card.face["expression_labels"]
    assert len(msg.faces[0].expression_probabilities) == 8 and np.isclose(msg.faces[0].arousal, STAND_IN_AROUSAL)


@pytest.mark.ros
def test_end_to_end_the_affect_of_the_face_node_and_fusion_is_the_imported_models(stand_ins, tmp_path):
    """face_embedding_node with the imported card, fusion_node in prior mode, both as processes: the
    AffectArray's valence/arousal are the stand-in's (its valence of the crop, its constant arousal) and
    the FaceEmbeddingArray names the expression probabilities by the card's classes."""
    from emo_perception_msgs.msg import AffectArray, FaceEmbeddingArray
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from emo_perception import conversions
    from emo_perception.runtime import load_configs
    from emo_perception.runtime.build import build_face_pipeline
    from media import demo_frame
    from node_harness import PARAMS, Harness, NodeProcess

    card = import_face_model(stand_ins["hsemotion-enet_b0_8_va_mtl"], tmp_path / "hse.json",
                             preset="hsemotion-enet_b0_8_va_mtl")
    frame = demo_frame()
    offline = build_face_pipeline(dataclasses.replace(load_configs(PARAMS)["face_embedding_node"],
                                                      face_model=card.path))
    want = offline.process(frame, 10.0).faces
    offline.release()
    assert len(want) == 1
    procs = [NodeProcess("face_embedding_node", "-p", f"face_model:={card.path}", "-p", "processing_rate:=20.0"),
             NodeProcess("fusion_node", "-p", "mode:=prior")]
    h = Harness()
    try:
        faces = h.collect(FaceEmbeddingArray, "faces/embeddings")
        affect = h.collect(AffectArray, "affect")
        pub = h.node.create_publisher(Image, "image", qos_profile_sensor_data)
        h.wait_for(lambda: pub.get_subscription_count() > 0, 60, "face node subscription")
        k = 0
        while not any(m.people for m in affect):
            assert k < 300, f"no AffectArray with a person ({len(faces)} face arrays): " + procs[1].log()[-2000:]
            msg = conversions.rgb_to_image(frame, "rgb8")
            msg.header.stamp, msg.header.frame_id = conversions.seconds_to_stamp(10.0 + 0.1 * k), "camera"
            pub.publish(msg)
            time.sleep(0.1)
            k += 1
    finally:
        h.close()
        for p in procs:
            p.stop()
    got = [m for m in faces if m.faces][0]
    assert list(got.expression_labels) == list(HSEMOTION_8) and got.model_id == card.model_id
    assert got.faces[0].valence == pytest.approx(want[0].valence, abs=1e-6)
    # the prior's smoothing is a convex combination of the faces' estimates: within their range, and the
    # stand-in's constant arousal exactly (its probabilities through the circumplex would give another)
    person = [p for m in affect for p in m.people][0]
    published = [f.valence for m in faces for f in m.faces]
    assert min(published) - 1e-5 <= person.valence <= max(published) + 1e-5
    assert person.arousal == pytest.approx(STAND_IN_AROUSAL, abs=1e-5)
    circumplex = expression_to_valence_arousal(np.asarray(got.faces[0].expression_probabilities),
                                               circumplex_points(HSEMOTION_8))
    assert abs(float(circumplex[1]) - STAND_IN_AROUSAL) > 0.3


def test_int8_calibration_crops_are_the_imported_models_own(stand_ins, tmp_path):
    """emo_engine's INT8 calibration feeds each face model the crops it takes (TensorRT itself runs only
    where it is installed)."""
    import cv2

    from emo_perception.runtime.engine_plan import face_calibration_samples

    cv2.imwrite(str(tmp_path / "astronaut.png"), ASTRONAUT[:, :, ::-1])
    card = import_face_model(stand_ins["emonet-8"], tmp_path / "emonet.json", preset="emonet-8")
    samples = face_calibration_samples([tmp_path / "astronaut.png"], card_path=card.path)
    assert list(samples) == ["image"] and samples["image"].shape == (1, 3, 256, 256)
    assert 0.0 <= samples["image"].min() and samples["image"].max() <= 1.0      # EmoNet's [0, 1] RGB
    ours = face_calibration_samples([tmp_path / "astronaut.png"])
    assert ours["face"].shape == (1, 1, 64, 64)


def test_the_class_names_reach_the_fusion_and_ros4hri(stand_ins):
    """The names travel with the faces (FaceEmbeddingArray -> FaceFrame); the fusion's most probable
    expression is the model's class, and ROS4HRI gets its hri_msgs name (AffectNet's 'Happiness' -> happy)."""
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header

    from emo_perception import conversions
    from emo_perception.core.fusion_pipeline import FusionStep, PersonAffect, _expression

    card = import_face_model(stand_ins["hsemotion-enet_b0_8_va_mtl"], preset="hsemotion-enet_b0_8_va_mtl")
    pipeline, faces = _faces(card.path)
    msg = conversions.face_array_to_msg(faces, Header(stamp=Time(sec=1)), card.model_id, (512, 512), 0.0,
                                        pipeline.expression_labels)
    face = conversions.face_frame_from_msg(msg).faces[0]
    assert face.expression_labels == HSEMOTION_8
    assert _expression(face) == HSEMOTION_8[int(np.argmax(face.expression_probabilities))]

    class Expression:          # hri_msgs/Expression's fields, without hri_msgs
        def __init__(self, **kw):
            self.__dict__.update(kw)
    step = FusionStep(1.0, "camera", [PersonAffect("f1", 0.5, 0.1, 0.8, True, False, (0, 0, 9, 9), "Happiness"),
                                      PersonAffect("f2", 0.0, 0.0, 0.8, True, False, (0, 0, 9, 9), "Contempt")])
    out = conversions.hri_expression_msgs(step, Header(), Expression)
    assert out["f1"].expression == "happy" and out["f2"].expression == ""
