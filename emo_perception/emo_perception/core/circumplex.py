"""Expression probabilities -> valence/arousal, through fixed points on the affect circumplex.

Each FER2013 category is placed at approximate (pleasure, arousal) values after Russell &
Mehrabian (1977, "Evidence for a three-factor theory of emotions", J. Research in Personality
11:273-294): joy, distress, anger and fear as tabulated in the ALMA model (Gebhard 2005, AAMAS,
Table 1); disgust and surprise placed by their angle on Russell's (1980) circumplex; neutral at
the origin. These are a documented prior, not fitted values: check them against the original
tables before quoting them. The face-only estimate is the probability-weighted mean of the points.
"""
from __future__ import annotations

import numpy as np

EXPRESSION_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # FER2013 order

# (valence, arousal) per label, same order.
CIRCUMPLEX_POINTS = np.array([
    (-0.51, 0.59),   # angry   (anger)
    (-0.60, 0.35),   # disgust
    (-0.64, 0.60),   # fear
    (0.40, 0.20),    # happy   (joy)
    (-0.40, -0.20),  # sad     (distress)
    (0.40, 0.67),    # surprise
    (0.00, 0.00),    # neutral
], dtype=np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """(..., K) logits -> probabilities over the last axis (an expression classifier's logits ->
    the probabilities below); the maximum is subtracted first, so large logits do not overflow."""
    z = np.asarray(logits)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def expression_to_valence_arousal(probabilities: np.ndarray) -> np.ndarray:
    """(..., 7) probabilities -> (..., 2) valence, arousal in [-1, 1]."""
    p = np.asarray(probabilities, np.float32)
    if p.shape[-1] != len(EXPRESSION_LABELS):
        raise ValueError(f"expected {len(EXPRESSION_LABELS)} expression probabilities, got shape {p.shape}")
    p = p / np.clip(p.sum(axis=-1, keepdims=True), 1e-6, None)
    return np.clip(p @ CIRCUMPLEX_POINTS, -1.0, 1.0)
