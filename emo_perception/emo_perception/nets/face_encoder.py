"""Face encoder: the compact student of the paper's knowledge distillation.

Same input as the teacher (core/face_crop.py: (N, 1, 64, 64) in [-1, 1]). Outputs an embedding
for the fusion GRU, expression logits (distilled from the teacher's soft labels) and a
valence/arousal head (supervised where labels exist).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class FaceEncoderConfig:
    channels: tuple = (32, 64, 128, 256)   # one stride-2 stage each: 64 -> 32 -> 16 -> 8 -> 4
    embedding_dim: int = 256
    n_expressions: int = 7
    dropout: float = 0.2


def _stage(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FaceEncoder(nn.Module):
    def __init__(self, config: FaceEncoderConfig = FaceEncoderConfig()):
        super().__init__()
        self.config = config
        chans = (1,) + tuple(config.channels)
        self.features = nn.Sequential(*(_stage(a, b) for a, b in zip(chans[:-1], chans[1:])))
        self.embed = nn.Sequential(nn.Flatten(), nn.Dropout(config.dropout),
                                   nn.Linear(chans[-1], config.embedding_dim), nn.ReLU(inplace=True))
        self.expression = nn.Linear(config.embedding_dim, config.n_expressions)
        self.valence_arousal = nn.Linear(config.embedding_dim, 2)

    def forward(self, x):                                   # (N, 1, 64, 64)
        feat = self.features(x).mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
        emb = self.embed(feat)                              # (N, E)
        return emb, self.expression(emb), torch.tanh(self.valence_arousal(emb))
