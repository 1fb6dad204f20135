"""Everything on RECOLA's 25 Hz annotation grid: labels (with the raters' delay), cached face and
audio features held onto it the way the fusion node's aligner does, which face is which annotated
person, CCC per session and pooled, and the masked CCC loss."""
from __future__ import annotations

import numpy as np

from ..core.metrics import ccc

PERIOD = 0.04    # 25 Hz
HOLD = 0.2       # the fusion node's default `hold`: an embedding stands in this long
TOLERANCE = 0.04


def grid_times(start: float, end: float) -> np.ndarray:
    k0, k1 = int(np.ceil(start / PERIOD - 1e-9)), int(np.floor(end / PERIOD + 1e-9))
    return np.arange(k0, k1 + 1) * PERIOD


def labels_at(series: dict, times: np.ndarray, delay: float = 0.0) -> np.ndarray:
    """(T, 2) valence/arousal at `times` + `delay` (the raters lag the signal: what they rate at t+d
    is what was seen at t), linear between annotations, NaN outside them and next to NaN values."""
    t = series["time"]
    out = np.full((len(times), 2), np.nan)
    q = times + delay
    for j, dim in enumerate(("valence", "arousal")):
        v = series[dim]
        ok = np.isfinite(v)
        if ok.sum() < 2:
            continue
        vals = np.interp(q, t[ok], v[ok])
        # NaN where the nearest annotation is missing (raters' gaps stay gaps) or outside the span
        nearest = np.clip(np.searchsorted(t, q), 1, len(t) - 1)
        nearest = np.where(np.abs(t[nearest - 1] - q) <= np.abs(t[nearest] - q), nearest - 1, nearest)
        bad = ~ok[nearest] | (q < t[0] - 1e-9) | (q > t[-1] + 1e-9)
        out[:, j] = np.where(bad, np.nan, vals)
    return out


def hold_on_grid(row_times: np.ndarray, values: np.ndarray, times: np.ndarray, hold: float = HOLD,
                 ahead: float = TOLERANCE / 2):
    """For each grid time, the latest row at or before it (up to `ahead` after it) no older than
    `hold`: (values (T, D), present (T,) bool)."""
    idx = np.searchsorted(row_times, times + ahead, side="right") - 1
    present = idx >= 0
    present[present] &= (times[present] - row_times[idx[present]]) <= hold
    out = np.zeros((len(times),) + values.shape[1:], values.dtype)
    out[present] = values[idx[present]]
    return out, present


def person_tracks(faces: dict, persons: list) -> dict:
    """Annotated person -> face track. One person: the track seen in most frames. Several: the most
    seen tracks, matched left to right to the persons in sorted order (README: lab layout)."""
    tracks, counts = np.unique(faces["track"], return_counts=True)
    if not len(tracks):
        return {}
    top = [tracks[i] for i in np.argsort(-counts, kind="stable")[:len(persons)]]
    centre = {t: float(np.mean(faces["box"][faces["track"] == t][:, 0] + faces["box"][faces["track"] == t][:, 2] / 2))
              for t in top}
    return dict(zip(sorted(persons), sorted(top, key=centre.get)))


def ccc_scores(pred: dict, gold: dict) -> dict:
    """CCC of valence and arousal per session and pooled over all steps; sessions: name -> (T, 2)."""
    out, pooled_p, pooled_g = {}, [], []
    per = {"valence": [], "arousal": []}
    for name in sorted(pred):
        p, g = pred[name], gold[name]
        for j, dim in enumerate(("valence", "arousal")):
            ok = np.isfinite(g[:, j]) & np.isfinite(p[:, j])
            if ok.sum() >= 2:
                per[dim].append(ccc(p[ok, j], g[ok, j]))
                out[f"{name}/ccc_{dim}"] = per[dim][-1]
        pooled_p.append(p)
        pooled_g.append(g)
    if pooled_p:
        p, g = np.concatenate(pooled_p), np.concatenate(pooled_g)
        for j, dim in enumerate(("valence", "arousal")):
            ok = np.isfinite(g[:, j]) & np.isfinite(p[:, j])
            out[f"ccc_{dim}"] = ccc(p[ok, j], g[ok, j]) if ok.sum() >= 2 else float("nan")
            out[f"ccc_{dim}_session_mean"] = float(np.mean(per[dim])) if per[dim] else float("nan")
        out["ccc_mean"] = (out["ccc_valence"] + out["ccc_arousal"]) / 2
    return out


def pooled(stage, scores: dict) -> dict:
    """The pooled figures (logged every epoch); the per-session ones ("<session>/ccc_<dim>") are kept
    on the stage for the summary."""
    stage.per_session = {k: v for k, v in scores.items() if "/" in k}
    return {k: v for k, v in scores.items() if "/" not in k}


def masked_ccc_loss(pred, gold, dim: int = -2):
    """1 - CCC along `dim` (time, or the batch for single windows), for each output column, over
    the entries whose label is finite; averaged over sequences and columns (torch)."""
    import torch

    w = torch.isfinite(gold).to(pred.dtype)
    g = torch.nan_to_num(gold)
    n = w.sum(dim=dim, keepdim=True).clamp_min(1)
    mp, mg = (pred * w).sum(dim, keepdim=True) / n, (g * w).sum(dim, keepdim=True) / n
    vp, vg = (((pred - mp) ** 2) * w).sum(dim, keepdim=True) / n, (((g - mg) ** 2) * w).sum(dim, keepdim=True) / n
    cov = ((pred - mp) * (g - mg) * w).sum(dim, keepdim=True) / n
    c = 2 * cov / (vp + vg + (mp - mg) ** 2 + 1e-8)
    valid = (w.sum(dim=dim, keepdim=True) >= 2).to(pred.dtype)
    return ((1 - c) * valid).sum() / valid.sum().clamp_min(1)
