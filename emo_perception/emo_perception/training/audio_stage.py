"""Stage `audio`: the VGGish-like log-mel encoder (nets/audio_encoder.py) with a valence/arousal
head, CCC loss. Its inputs are the log-mel windows the audio node computes (every 40 ms, 0.975 s
each: features.py); the exported model is the encoder alone (its embedding feeds the fusion GRU)."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from ..nets.audio_encoder import AudioEncoder, AudioEncoderConfig
from ..nets.losses import masked_ccc_loss
from .data import Skips, labelled_span, media_end, read_all, session_audio
from .grid import ccc_scores, grid_times, hold_on_grid, labels_at, pooled


class AudioRegressor(nn.Module):
    """Encoder + valence/arousal head; `config` is the encoder's (what export rebuilds)."""

    def __init__(self, config: AudioEncoderConfig):
        super().__init__()
        self.encoder = AudioEncoder(config)
        self.config = config
        self.head = nn.Linear(config.embedding_dim, 2)

    def forward(self, mel):
        return torch.tanh(self.head(torch.relu(self.encoder(mel))))


@dataclasses.dataclass
class AudioItems:
    mel: np.ndarray      # (N, 96, 64) float16
    va: np.ndarray       # (N, 2)
    augment: bool = True

    def __len__(self):
        return len(self.mel)

    def batch(self, idx, seeds):
        x = torch.from_numpy(self.mel[idx].astype(np.float32)).unsqueeze(1)    # (B, 1, 96, 64)
        if self.augment:
            for i, seed in enumerate(seeds):
                g = torch.Generator().manual_seed(seed)
                gain = (torch.rand(1, generator=g).item() - 0.5) * 2.0          # +-1 in log units (~ +-8.7 dB)
                f0, t0 = int(torch.randint(0, 56, (1,), generator=g)), int(torch.randint(0, 80, (1,), generator=g))
                xi = x[i] + gain
                fill = xi.mean()
                xi[:, :, f0:f0 + 8] = fill                                       # SpecAugment: 8 mel bands
                xi[:, t0:t0 + 16, :] = fill                                      # and 16 frames
                x[i] = xi
        return {"mel": x, "va": torch.from_numpy(self.va[idx]).float()}


class AudioStage:
    name = "audio"
    kind = "audio_encoder"

    def __init__(self, cfg, verbose: bool = True):
        self.cfg = cfg
        self.skips = Skips(verbose)
        ds = read_all(cfg, self.skips)
        parts = {"train": [], "val": []}
        self.val_sessions = {}
        for s in ds.sessions:
            if s.split == "test" or s.annotations is None:
                continue
            audio = session_audio(cfg, s, "logmel_stats", self.skips)   # the windows do not depend on the encoder
            if audio is None:
                continue
            span = labelled_span(s, media_end(None, audio), self.skips, cfg.annotation_delay)
            if span is None:
                continue
            person = sorted(s.annotations.series)[0]   # one voice track: the first annotated person
            series = s.annotations.series[person]
            va = labels_at(series, audio["time"], cfg.annotation_delay)
            keep = np.isfinite(va).all(axis=1)
            parts[s.split].append((audio["mel"][keep], va[keep]))
            if s.split == "val":
                grid = grid_times(*span)
                self.val_sessions[s.name] = (audio["mel"], audio["time"], grid,
                                             labels_at(series, grid, cfg.annotation_delay))
        cat = lambda ps, i, shape: np.concatenate([p[i] for p in ps]) if ps else np.zeros(shape)  # noqa: E731
        self.train_set = AudioItems(cat(parts["train"], 0, (0, 96, 64)).astype(np.float16),
                                    cat(parts["train"], 1, (0, 2)).astype(np.float32), cfg.augment)
        if not len(self.train_set):
            raise ValueError("no labelled audio windows: every session was skipped (see the reasons above)")
        self.model = AudioRegressor(AudioEncoderConfig())

    def model_args(self):
        return dataclasses.asdict(self.model.config)

    def config_dict(self):
        return dataclasses.asdict(self.cfg)

    def loss(self, net, batch):
        pred = net(batch["mel"])
        loss = masked_ccc_loss(pred, batch["va"], dim=0)     # CCC over the batch's windows, per dimension
        return loss, {}

    @torch.no_grad()
    def evaluate(self, model) -> dict:
        model.eval()
        dev = next(model.parameters()).device
        pred, gold = {}, {}
        for name, (mel, times, grid, labels) in self.val_sessions.items():
            va = torch.cat([model(torch.from_numpy(mel[k:k + 512].astype(np.float32)).unsqueeze(1).to(dev))
                            for k in range(0, len(mel), 512)]).cpu().numpy()
            pred[name] = hold_on_grid(times, va.astype(np.float64), grid)[0]
            gold[name] = labels
        model.train()
        return pooled(self, ccc_scores(pred, gold))

    def export_model(self, model):
        return model.encoder

    def summary(self) -> dict:
        return {"train_windows": len(self.train_set), "val_sessions": len(self.val_sessions), **self.skips.summary()}
