"""Training losses (torch): 1 - CCC, the AVEC/RECOLA metric (core/metrics.py `ccc`) as a loss."""
from __future__ import annotations

import torch


def _ccc(pred, gold, dim: int, weight=None):
    """Lin's CCC along `dim` (kept, size 1) over the entries of weight 1 (all without `weight`);
    population moments, as core/metrics.py `ccc`."""
    w = torch.ones_like(pred) if weight is None else weight
    n = w.sum(dim, keepdim=True).clamp_min(1)
    mp, mg = (pred * w).sum(dim, keepdim=True) / n, (gold * w).sum(dim, keepdim=True) / n
    vp, vg = (((pred - mp) ** 2) * w).sum(dim, keepdim=True) / n, (((gold - mg) ** 2) * w).sum(dim, keepdim=True) / n
    cov = ((pred - mp) * (gold - mg) * w).sum(dim, keepdim=True) / n
    return 2 * cov / (vp + vg + (mp - mg) ** 2 + 1e-8)


def ccc_loss(pred, gold):
    """1 - CCC along the last dimension, averaged over the others (a batch of sequences); what the
    paper trains with."""
    return (1 - _ccc(pred, gold, -1)).mean()


def masked_ccc_loss(pred, gold, dim: int = -2):
    """1 - CCC along `dim` (time, or the batch for single windows), for each output column, over
    the entries whose label is finite; averaged over the sequences and columns with two or more."""
    w = torch.isfinite(gold).to(pred.dtype)
    c = _ccc(pred, torch.nan_to_num(gold), dim, w)
    valid = (w.sum(dim=dim, keepdim=True) >= 2).to(pred.dtype)
    return ((1 - c) * valid).sum() / valid.sum().clamp_min(1)
