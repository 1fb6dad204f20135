"""A torchvision backbone as the face student (emo_train face --set backbone=torchvision:resnet18).

The grey 64x64 crop is repeated to three channels so that ImageNet weights the user gives (a
state_dict file; nothing is downloaded) apply unchanged; the classifier is replaced by the same heads
as FaceEncoder, so the exported model has the face_encoder's inputs and outputs.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class TorchvisionFaceConfig:
    arch: str = "resnet18"
    embedding_dim: int = 256
    n_expressions: int = 7
    dropout: float = 0.2


def _backbone(arch: str) -> tuple[nn.Module, int]:
    try:
        import torchvision
    except (ImportError, RuntimeError) as err:   # RuntimeError: a torchvision built for another torch
        raise ImportError(f"backbone 'torchvision:{arch}' needs a torchvision that matches torch "
                          f"{torch.__version__} ({err})") from err
    if not hasattr(torchvision.models, arch):
        raise ValueError(f"torchvision has no architecture '{arch}'")
    net = getattr(torchvision.models, arch)(weights=None)
    head = next(name for name in ("fc", "classifier", "head", "heads") if hasattr(net, name))
    old = getattr(net, head)
    width = old.in_features if isinstance(old, nn.Linear) else next(m.in_features for m in old.modules()
                                                                   if isinstance(m, nn.Linear))
    setattr(net, head, nn.Identity())
    return net, width


class TorchvisionFaceEncoder(nn.Module):
    def __init__(self, config: TorchvisionFaceConfig = TorchvisionFaceConfig()):
        super().__init__()
        self.config = config
        self.backbone, width = _backbone(config.arch)
        self.embed = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(width, config.embedding_dim),
                                   nn.ReLU(inplace=True))
        self.expression = nn.Linear(config.embedding_dim, config.n_expressions)
        self.valence_arousal = nn.Linear(config.embedding_dim, 2)

    def load_backbone(self, path):
        """ImageNet (or any) weights of the architecture from a state_dict file; its classifier is dropped."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        own = self.backbone.state_dict()
        kept = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if not kept:
            raise ValueError(f"'{path}' holds no weights of torchvision's {self.config.arch}")
        self.backbone.load_state_dict(kept, strict=False)

    def forward(self, x):                                   # (N, 1, 64, 64) in [-1, 1]
        emb = self.embed(self.backbone(x.repeat(1, 3, 1, 1)))
        return emb, self.expression(emb), torch.tanh(self.valence_arousal(emb))
