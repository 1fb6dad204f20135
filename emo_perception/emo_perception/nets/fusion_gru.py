"""Model-level fusion with a GRU (Schoneveld et al. 2021, Sec. 3.3).

Per-modality projections of the face and audio embeddings are concatenated with the
presence mask (so the network knows a zero means "missing", not "neutral") and fed to a GRU
over 25 Hz steps. Heads: valence/arousal in [-1, 1] (tanh) and a confidence in [0, 1].
The same module runs whole sequences (training) and one step with a carried state (runtime).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class FusionGRUConfig:
    face_dim: int = 256
    audio_dim: int = 128
    projection_dim: int = 128
    hidden_dim: int = 128
    num_layers: int = 2
    dropout: float = 0.1
    face_model_id: str = ""    # embedding model ids this fusion model was trained on
    face_feature: str = "embedding"   # of each face: the face model's embedding | blendshapes (MediaPipe's 52)
    audio_delay: float = 0.0   # s: each step's audio is from this long before it (the node's audio_delay)
    audio_model_id: str = ""


class FusionGRU(nn.Module):
    def __init__(self, config: FusionGRUConfig = FusionGRUConfig()):
        super().__init__()
        self.config = config
        c = config
        self.face_proj = nn.Sequential(nn.Linear(c.face_dim, c.projection_dim), nn.ReLU())
        self.audio_proj = nn.Sequential(nn.Linear(c.audio_dim, c.projection_dim), nn.ReLU())
        self.gru = nn.GRU(2 * c.projection_dim + 2, c.hidden_dim, c.num_layers, batch_first=True,
                          dropout=c.dropout if c.num_layers > 1 else 0.0)
        self.valence_arousal = nn.Linear(c.hidden_dim, 2)
        self.confidence = nn.Linear(c.hidden_dim, 1)

    def initial_state(self, batch: int = 1) -> torch.Tensor:
        return torch.zeros(self.config.num_layers, batch, self.config.hidden_dim)

    def forward(self, face, audio, mask, state):
        # face (B, T, Df), audio (B, T, Da), mask (B, T, 2) in {0, 1}, state (L, B, H)
        f = self.face_proj(face) * mask[..., :1]
        a = self.audio_proj(audio) * mask[..., 1:]
        out, state = self.gru(torch.cat([f, a, mask], dim=-1), state)   # (B, T, H), (L, B, H)
        va = torch.tanh(self.valence_arousal(out))                      # (B, T, 2)
        conf = torch.sigmoid(self.confidence(out)) * mask.amax(dim=-1, keepdim=True)  # 0 if nothing seen
        return va, conf, state
