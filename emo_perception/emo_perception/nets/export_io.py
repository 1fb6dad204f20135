"""Named inputs/outputs of every model kind: what the ONNX graph, the card and all backends share."""
from __future__ import annotations

import torch
from torch import nn

from ..core.audio_frontend import LogMelConfig
from ..core.face_crop import CROP_SIZE

FACE_NORMALISATION = (f"face crop {CROP_SIZE}x{CROP_SIZE} grey (BT.601), x/127.5-1 "
                      "(emo_perception.core.face_crop.crop_faces)")
_m = LogMelConfig()
AUDIO_NORMALISATION = (f"log(mel magnitude + {_m.log_offset}), {_m.sample_rate} Hz, window {_m.window_length}, "
                       f"hop {_m.hop_length}, {_m.n_mels} Slaney mels {_m.f_min:g}-{_m.f_max:g} Hz "
                       "(emo_perception.core.audio_frontend.log_mel)")


class _Teacher(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, face):
        return self.m.embed(face)


class _Plain(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, *args):
        out = self.m(*args)
        return out if isinstance(out, tuple) else (out,)


def spec(kind: str, model_args: dict) -> dict:
    """inputs/outputs (name, shape with named dynamic axes), example sizes and normalisation."""
    if kind in ("expression_teacher", "face_encoder", "torchvision_face_encoder"):
        emb = 128 if kind == "expression_teacher" else model_args["embedding_dim"]
        outputs = [("embedding", ["batch", emb]), ("expression_logits", ["batch", model_args.get("n_expressions", 7)])]
        if kind != "expression_teacher":
            outputs.append(("valence_arousal", ["batch", 2]))
        return {"inputs": [("face", ["batch", 1, CROP_SIZE, CROP_SIZE])], "outputs": outputs,
                "normalisation": FACE_NORMALISATION}
    if kind == "audio_encoder":
        return {"inputs": [("log_mel", ["batch", 1, model_args["n_frames"], model_args["n_mels"]])],
                "outputs": [("embedding", ["batch", model_args["embedding_dim"]])],
                "normalisation": AUDIO_NORMALISATION}
    if kind == "fusion_gru":
        a = model_args
        state = [a["num_layers"], "batch", a["hidden_dim"]]
        return {"inputs": [("face", ["batch", "time", a["face_dim"]]), ("audio", ["batch", "time", a["audio_dim"]]),
                           ("mask", ["batch", "time", 2]), ("state", state)],
                "outputs": [("valence_arousal", ["batch", "time", 2]), ("confidence", ["batch", "time", 1]),
                            ("state_out", state)],
                "normalisation": "face/audio: encoder embeddings; mask: [face present, audio present] in {0,1}"}
    raise ValueError(f"unknown model kind '{kind}'")


def named_io_module(model: nn.Module) -> nn.Module:
    """The module whose positional inputs/outputs follow spec(kind)'s order."""
    from .expression_teacher import ExpressionTeacher

    return _Teacher(model) if isinstance(model, ExpressionTeacher) else _Plain(model)


def example_inputs(kind: str, model_args: dict, batch: int = 2, time: int = 5) -> list[torch.Tensor]:
    sizes = {"batch": batch, "time": time}
    g = torch.Generator().manual_seed(0)
    tensors = []
    for name, shape in spec(kind, model_args)["inputs"]:
        dims = [sizes.get(d, d) for d in shape]
        t = torch.rand(dims, generator=g) * 2 - 1
        if name == "mask":
            t = (t > -0.5).float()
        if name == "state":
            t = t * 0.1
        tensors.append(t)
    return tensors
