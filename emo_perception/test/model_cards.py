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


# ---- stand-ins of the face models users import (issue 22): same input/output names and shapes as
# HSEmotion's ONNX files and an EmoNet export, tiny torch nets exported with torch.onnx.export
STAND_IN_AROUSAL = -0.6      # every stand-in's arousal: a constant the circumplex would not give


def stand_in_valence(x):
    """The stand-ins' valence: a known function of the crop they get, (N, C, S, S) -> (N,)."""
    return 0.25 * x.mean(axis=(1, 2, 3))


def _export(module, example, path, inputs, outputs):
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (example,), str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes={n: {0: "batch"} for n in inputs + outputs}, opset_version=17, dynamo=False)
    return path


def hsemotion_like(folder: pathlib.Path, classes: int = 8, va: bool = True, size: int = 224,
                   name: str = "enet_b0_8_va_mtl") -> pathlib.Path:
    """An ONNX file shaped like HSEmotion's: input 'input' (N, 3, S, S), one output (N, classes [+ 2]):
    logits from the channel means, then valence = stand_in_valence(x), arousal = STAND_IN_AROUSAL."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(1)
            self.w = nn.Parameter(torch.randn(3, classes, generator=g) * 4, requires_grad=False)

        def forward(self, x):
            means = x.mean(dim=(2, 3))                                 # (N, 3)
            logits = means @ self.w                                    # (N, classes)
            if not va:
                return logits
            v = 0.25 * means.mean(dim=1, keepdim=True)
            return torch.cat([logits, v, torch.full_like(v, STAND_IN_AROUSAL)], dim=1)
    return _export(Net(), torch.zeros(2, 3, size, size), folder / f"{name}.onnx", ["input"], ["output"])


def emonet_like(folder: pathlib.Path, classes: int = 8) -> pathlib.Path:
    """An ONNX file shaped like EmoNet exported as docs/face_models.md says: input 'image' (N, 3, 256, 256),
    outputs heatmap (N, 68, 64, 64), expression (N, classes), valence (N,), arousal (N,)."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(2)
            self.w = nn.Parameter(torch.randn(3, classes, generator=g) * 4, requires_grad=False)

        def forward(self, image):
            means = image.mean(dim=(2, 3))
            heat = nn.functional.adaptive_avg_pool2d(image[:, :1], 64).repeat(1, 68, 1, 1)
            v = 0.25 * means.mean(dim=1)
            return heat, means @ self.w, v, torch.full_like(v, STAND_IN_AROUSAL)
    return _export(Net(), torch.zeros(2, 3, 256, 256), folder / f"emonet_{classes}.onnx", ["image"],
                   ["heatmap", "expression", "valence", "arousal"])


def brightness_teacher(folder: pathlib.Path, name: str = "brightness_teacher") -> pathlib.Path:
    """A teacher shaped like HSEmotion's enet_b0_8_va_mtl (input 'input' (N, 3, 224, 224), one output
    (N, 10)) whose valence and arousal are learnable functions of the face: valence = tanh(1.5 (mean - 0.6)),
    arousal = tanh(2 (std - 0.9)) of the normalised crop (brightness and contrast), logits from the
    channel means: what a student can be asked to reproduce (test_distill_teacher.py)."""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(3)
            self.w = nn.Parameter(torch.randn(3, 8, generator=g) * 3, requires_grad=False)

        def forward(self, x):
            means = x.mean(dim=(2, 3))
            v = torch.tanh(1.5 * (x.mean(dim=(1, 2, 3)) - 0.6)).unsqueeze(1)
            a = torch.tanh(2.0 * (x.flatten(1).std(dim=1) - 0.9)).unsqueeze(1)
            return torch.cat([means @ self.w, v, a], dim=1)
    return _export(Net(), torch.zeros(2, 3, 224, 224), folder / f"{name}.onnx", ["input"], ["output"])
