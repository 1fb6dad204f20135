"""Audio encoder: a VGGish-shaped CNN on one log-mel window -> 128-d embedding.

Input (N, 1, 96, 64): 0.96 s of core/audio_frontend.log_mel (frames x mel bands). VGGish's
stacked 3x3 convolutions and 2x2 pooling, with narrower layers and global average pooling
instead of its 4096-wide dense layers, so that one hop fits the 5 ms CPU budget.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass
class AudioEncoderConfig:
    channels: tuple = (32, 64, 128, 256)   # each stage: conv3x3-BN-ReLU + 2x2 max-pool
    embedding_dim: int = 128
    n_frames: int = 96
    n_mels: int = 64


class AudioEncoder(nn.Module):
    def __init__(self, config: AudioEncoderConfig = AudioEncoderConfig()):
        super().__init__()
        self.config = config
        layers, cin = [], 1
        for cout in config.channels:
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.embed = nn.Linear(cin, config.embedding_dim)

    def forward(self, x):                                  # (N, 1, 96, 64)
        feat = self.features(x).mean(dim=(2, 3))           # (N, C)
        return self.embed(feat)                            # (N, 128)
