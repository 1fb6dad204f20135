"""Everything on RECOLA's 25 Hz annotation grid: labels (with the raters' delay), cached face and
audio features held onto it the way the fusion node's aligner does, which face is which annotated
person, CCC per session and pooled. (The masked CCC loss is nets/losses.py.)"""
from __future__ import annotations

import numpy as np

from ..core.alignment import HOLD, PERIOD, TOLERANCE
from ..core.annotated_people import person_tracks  # noqa: F401  (one rule, shared with eval/)
from ..core.metrics import ccc


def grid_times(start: float, end: float) -> np.ndarray:
    """The grid points in [start, end], computed as the aligner computes them (k * PERIOD to 1 ns)."""
    k0, k1 = int(np.ceil(start / PERIOD - 1e-9)), int(np.floor(end / PERIOD + 1e-9))
    return np.round(np.arange(k0, k1 + 1) * PERIOD, 9)


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
                 tolerance: float = TOLERANCE):
    """The rows the fusion's aligner (core/alignment.py StreamAligner) would take at each grid time:
    the nearest within `tolerance` (a tie goes to the earlier), else the latest earlier one no older
    than `hold`; of rows with one time, the first. `row_times` sorted. (values (T, D), present (T,) bool).
    test_training_data.py checks it against StreamAligner on random stamps."""
    row_times, times = np.asarray(row_times, np.float64), np.asarray(times, np.float64)
    out = np.zeros((len(times),) + values.shape[1:], values.dtype)
    if not len(row_times):
        return out, np.zeros(len(times), bool)
    rows = np.flatnonzero(np.r_[True, np.diff(row_times) != 0])   # a repeated stamp: the aligner keeps the first
    st = row_times[rows]
    pos = np.searchsorted(st, times)                               # first row at or after t (bisect_left)
    before, after = np.maximum(pos - 1, 0), np.minimum(pos, len(st) - 1)
    d_before = np.where(pos > 0, times - st[before], np.inf)
    d_after = np.where(pos < len(st), st[after] - times, np.inf)
    take_before = d_before <= tolerance + 1e-9
    take_after = (d_after <= tolerance + 1e-9) & (~take_before | (d_after < d_before - 1e-12))
    take_before |= ~take_after & (d_before <= hold + 1e-9)         # zero-order hold of the latest earlier row
    present = take_before | take_after
    idx = rows[np.where(take_after, after, before)]
    out[present] = values[idx[present]]
    return out, present


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

