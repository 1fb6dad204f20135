"""Model bundles for the card checks: the shipped teacher with an edited card, and a stand-in face
model of another crop size (an ONNX graph built with onnx.helper, no training, no torch)."""
import json
import pathlib
import shutil

import numpy as np

from emo_perception.inference.model_card import CARD_FORMAT, ModelCard, sha256
from emo_perception.paths import share_dir

MODELS = share_dir() / "models"


def edited_teacher_card(folder: pathlib.Path, edit) -> pathlib.Path:
    """The shipped expression teacher (ONNX and checkpoint copied, so the hashes hold) with its card
    changed by `edit(card_dict)`: a card that lies about the model it names."""
    for name in ("expression_teacher.onnx", "expression_teacher.pt"):
        shutil.copyfile(MODELS / name, folder / name)
    data = json.loads((MODELS / "expression_teacher.json").read_text())
    edit(data)
    path = folder / "expression_teacher.json"
    path.write_text(json.dumps(data))
    return path


def stand_in_face_model(folder: pathlib.Path, size: int, channels: int = 1) -> pathlib.Path:
    """A face model taking (batch, channels, size, size) crops, with the outputs the face pipeline
    reads (embedding 128, expression_logits 7): fixed random projections of the crop. Its card tells
    the truth. Returns the card's path."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    pixels = channels * size * size
    w_emb = numpy_helper.from_array(rng.normal(0, 0.02, (pixels, 128)).astype(np.float32), "w_emb")
    w_expr = numpy_helper.from_array(rng.normal(0, 0.02, (pixels, 7)).astype(np.float32), "w_expr")
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["face"], ["flat"], axis=1),
         helper.make_node("MatMul", ["flat", "w_emb"], ["embedding"]),
         helper.make_node("MatMul", ["flat", "w_expr"], ["expression_logits"])],
        "stand_in_face",
        [helper.make_tensor_value_info("face", TensorProto.FLOAT, ["batch", channels, size, size])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 128]),
         helper.make_tensor_value_info("expression_logits", TensorProto.FLOAT, ["batch", 7])],
        [w_emb, w_expr])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    name = f"stand_in_face_{size}"
    onnx_path = folder / f"{name}.onnx"
    onnx.save(model, str(onnx_path))
    card = ModelCard(name=name, kind="face_encoder", model_id=f"{name}@{sha256(onnx_path)[:12]}",
                     inputs=[{"name": "face", "shape": ["batch", channels, size, size], "dtype": "float32"}],
                     outputs=[{"name": "embedding", "shape": ["batch", 128], "dtype": "float32"},
                              {"name": "expression_logits", "shape": ["batch", 7], "dtype": "float32"}],
                     onnx=onnx_path.name, onnx_sha256=sha256(onnx_path), format=CARD_FORMAT,
                     normalisation=f"face crop {size}x{size} grey, x/127.5-1 (a stand-in: random projections)")
    path = folder / f"{name}.json"
    card.save(path)
    return path
