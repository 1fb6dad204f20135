"""Evaluation metrics for continuous affect (numpy); the CCC training loss is nets/losses.py."""
from __future__ import annotations

import numpy as np


def ccc(pred, gold) -> float:
    """Lin's concordance correlation coefficient, the AVEC/RECOLA metric. 0 if both are constant."""
    x, y = np.asarray(pred, np.float64), np.asarray(gold, np.float64)
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"need two non-empty arrays of one shape, got {x.shape} and {y.shape}")
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        return 0.0   # both constant (their variances can come out as rounding noise, not 0)
    mx, my = x.mean(), y.mean()
    cov = np.mean((x - mx) * (y - my))
    denom = x.var() + y.var() + (mx - my) ** 2
    return float(2 * cov / denom) if denom > 0 else 0.0


def pcc(pred, gold) -> float:
    """Pearson correlation; 0 when either side is constant."""
    x, y = np.asarray(pred, np.float64), np.asarray(gold, np.float64)
    if x.size == 0 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0   # a constant side's std can come out as rounding noise, not 0
    sx, sy = x.std(), y.std()
    return float(np.mean((x - x.mean()) * (y - y.mean())) / (sx * sy)) if sx * sy > 0 else 0.0


def rmse(pred, gold) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, np.float64) - np.asarray(gold, np.float64)) ** 2)))


def sagr(pred, gold) -> float:
    """Sign agreement: fraction of steps where prediction and label have the same sign."""
    return float(np.mean(np.sign(np.asarray(pred)) == np.sign(np.asarray(gold))))

