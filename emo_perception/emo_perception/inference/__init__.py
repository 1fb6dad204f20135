"""One inference interface (named numpy inputs -> named numpy outputs), three backends.

    model = load_model("models/expression_teacher.json", backend="onnxruntime")
    outputs = model.run({"face": crops})        # {"embedding": ..., "expression_logits": ...}

Backends: "torch" (the checkpoint), "onnxruntime" (CPU, or CUDA when its provider exists),
"tensorrt" (an engine built from the ONNX file and cached; see backend_tensorrt.py).
"""
from __future__ import annotations

from .engine_cache import PRECISIONS
from .model_card import ModelCard, ModelFileError, load_card

BACKENDS = ("torch", "onnxruntime", "tensorrt")


def load_model(card_path, backend: str = "onnxruntime", **options):
    """Open the model bundle described by `card_path` with the chosen backend.

    Raises ModelFileError (missing/corrupt/mismatching files, with what to do) or ValueError
    (unknown backend). Backend modules are imported only when chosen, so a robot needs only
    the one it uses.
    """
    card = load_card(card_path)
    if backend == "onnxruntime":
        from .backend_onnxruntime import OnnxRuntimeModel
        return OnnxRuntimeModel(card, **options)
    if backend == "torch":
        from .backend_torch import TorchModel
        return TorchModel(card, **options)
    if backend == "tensorrt":
        from .backend_tensorrt import TensorRTModel
        return TensorRTModel(card, **options)
    raise ValueError(f"unknown inference backend '{backend}'; choose one of: {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "PRECISIONS", "ModelCard", "ModelFileError", "load_card", "load_model"]
