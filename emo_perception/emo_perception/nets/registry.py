"""Model kinds by name, for checkpoints and export."""
from __future__ import annotations

from .audio_encoder import AudioEncoder, AudioEncoderConfig
from .expression_teacher import ExpressionTeacher, TeacherConfig
from .face_encoder import FaceEncoder, FaceEncoderConfig
from .fusion_gru import FusionGRU, FusionGRUConfig

def _torchvision_face():
    from .torchvision_face import TorchvisionFaceConfig, TorchvisionFaceEncoder
    return TorchvisionFaceEncoder, TorchvisionFaceConfig


KINDS = {
    "expression_teacher": (ExpressionTeacher, TeacherConfig),
    "face_encoder": (FaceEncoder, FaceEncoderConfig),
    "audio_encoder": (AudioEncoder, AudioEncoderConfig),
    "fusion_gru": (FusionGRU, FusionGRUConfig),
}


def build(kind: str, model_args: dict):
    if kind not in KINDS and kind != "torchvision_face_encoder":
        raise ValueError(f"unknown model kind '{kind}'; known: {', '.join(KINDS)}")
    cls, cfg_cls = _torchvision_face() if kind == "torchvision_face_encoder" else KINDS[kind]
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in model_args.items()}
    return cls(cfg_cls(**args))
