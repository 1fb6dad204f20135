"""A model card that lies is refused at load (issue 20, item 7): every backend checks the card's names,
shapes and dtypes against what the model itself declares, in one line; the face pipeline takes its
crop size from the card. (Through ROS: test_nodes_streams.py.)"""
import numpy as np
import pytest
from skimage import data

from emo_perception.core.face_detection import HaarFaceDetector
from emo_perception.core.face_pipeline import FacePipeline
from emo_perception.core.tracking import IouTracker
from emo_perception.inference import ModelFileError, load_model
from emo_perception.inference.backend_tensorrt import _declared
from emo_perception.inference.model_card import check_model_io, load_card
from model_cards import edited_teacher_card, stand_in_face_model


def _face_shape(shape):
    def edit(card):
        card["inputs"][0]["shape"] = shape
    return edit


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_a_card_declaring_48x48_on_the_64x64_model_is_refused_in_one_line(tmp_path, backend):
    card = edited_teacher_card(tmp_path, _face_shape(["batch", 1, 48, 48]))
    with pytest.raises(ModelFileError) as err:
        load_model(card, backend)
    text = str(err.value)
    assert "\n" not in text
    assert "input 'face' has shape ['batch', 1, 64, 64] in the model, ['batch', 1, 48, 48] in the card" in text
    assert str(card) in text and "emo_export" in text


@pytest.mark.parametrize("edit, says", [
    (lambda c: c["inputs"][0].update(dtype="float16"), "input 'face' is float32 in the model, float16 in the card"),
    (lambda c: c["inputs"][0].update(name="image"), "inputs are ['face'] in the model, ['image'] in the card"),
    (lambda c: c["outputs"][1].update(shape=["batch", 8]),
     "output 'expression_logits' has shape ['batch', 7] in the model, ['batch', 8] in the card"),
    (lambda c: c["outputs"].append({"name": "valence_arousal", "shape": ["batch", 2], "dtype": "float32"}),
     "outputs are ['embedding', 'expression_logits'] in the model"),
    (lambda c: c["inputs"][0].update(shape=["batch", 64, 64]), "has shape ['batch', 1, 64, 64] in the model"),
])
def test_names_dtypes_ranks_and_output_shapes_are_checked_too(tmp_path, edit, says):
    with pytest.raises(ModelFileError, match=r"does not describe") as err:
        load_model(edited_teacher_card(tmp_path, edit), "onnxruntime")
    assert says in str(err.value)


def test_a_card_may_fix_a_dynamic_axis_but_not_free_a_fixed_one(tmp_path):
    card = load_card(edited_teacher_card(tmp_path, lambda c: None))
    card.inputs = [{"name": "x", "shape": [4, 3], "dtype": "float32"}]
    card.outputs = []
    check_model_io(card, [("x", ["batch", 3], "float32")], [], "m.onnx")     # the card narrows: fine
    card.inputs = [{"name": "x", "shape": ["batch", 3], "dtype": "float32"}]
    with pytest.raises(ModelFileError, match=r"input 'x' has shape \[1, 3\] in the model, \['batch', 3\] in the card"):
        check_model_io(card, [("x", [1, 3], "float32")], [], "m.onnx")    # N faces would not fit a batch of 1


def test_tensorrt_engine_tensors_are_checked_the_same_way(tmp_path):
    """What the TensorRT backend reads from the network and the engine (Dims with -1, DataType), checked
    by the same rule (the TensorRT calls themselves run only where tensorrt imports)."""
    card = load_card(edited_teacher_card(tmp_path, _face_shape(["batch", 1, 48, 48])))
    inputs = _declared([("face", (-1, 1, 64, 64), "DataType.FLOAT")])
    outputs = _declared([("embedding", (-1, 128), "DataType.FLOAT"), ("expression_logits", (-1, 7), "FLOAT")])
    assert inputs == [("face", (-1, 1, 64, 64), "float32")]
    with pytest.raises(ModelFileError, match=r"input 'face' has shape \['\?', 1, 64, 64\] in the model"):
        check_model_io(card, inputs, outputs, "engine.plan", ordered_outputs=False)
    card.inputs[0]["shape"] = ["batch", 1, 64, 64]
    check_model_io(card, inputs, outputs, "engine.plan", ordered_outputs=False)


def test_the_face_pipeline_crops_at_the_size_its_card_gives(tmp_path):
    model = load_model(stand_in_face_model(tmp_path, 48), "onnxruntime")
    pipeline = FacePipeline(HaarFaceDetector(), model, IouTracker())
    assert pipeline.crop_size == 48
    faces = pipeline.process(data.astronaut(), 1.0).faces    # a 64x64 crop would not fit the 48x48 input
    assert len(faces) == 1 and faces[0].embedding.shape == (128,)
    assert np.isfinite(faces[0].valence)


def test_a_face_input_the_crops_cannot_be_made_for_is_refused(tmp_path):
    model = load_model(stand_in_face_model(tmp_path, 48, channels=3), "onnxruntime")
    with pytest.raises(ValueError, match=r"input 'face' is \['batch', 3, 48, 48\]; expected \(batch, 1, S, S\)"):
        FacePipeline(HaarFaceDetector(), model, IouTracker())
