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


# Other models' class names (AffectNet's, as HSEmotion and EmoNet spell them) -> the label above whose
# point they take. Contempt has no point in the tables above: it is placed like ALMA's "reproach"
# (Gebhard 2005, Table 1: P -0.3, A -0.1), the nearest listed emotion; an assumption, flagged as such.
SYNONYMS = {"anger": "angry", "disgusted": "disgust", "fearful": "fear", "scared": "fear", "happiness": "happy",
            "sadness": "sad", "surprised": "surprise"}
EXTRA_POINTS = {"contempt": (-0.30, -0.10)}


def circumplex_points(labels) -> np.ndarray:
    """(K, 2) points of the class names `labels` (case-insensitive; SYNONYMS and EXTRA_POINTS too);
    ValueError naming a class that has no point."""
    points = []
    for name in labels:
        key = SYNONYMS.get(str(name).lower(), str(name).lower())
        if key in EXPRESSION_LABELS:
            points.append(CIRCUMPLEX_POINTS[EXPRESSION_LABELS.index(key)])
        elif key in EXTRA_POINTS:
            points.append(EXTRA_POINTS[key])
        else:
            known = sorted(set(EXPRESSION_LABELS) | set(SYNONYMS) | set(EXTRA_POINTS))
            raise ValueError(f"expression class '{name}' has no point on the circumplex (core/circumplex.py); "
                             f"known: {', '.join(known)}; a model without valence/arousal outputs needs its "
                             "classes among them")
    return np.asarray(points, np.float32).reshape(-1, 2)


def expression_to_valence_arousal(probabilities: np.ndarray, points: np.ndarray = CIRCUMPLEX_POINTS) -> np.ndarray:
    """(..., K) probabilities -> (..., 2) valence, arousal in [-1, 1]; `points`: (K, 2), one per class
    (default: the FER2013 classes in EXPRESSION_LABELS order)."""
    p = np.asarray(probabilities, np.float32)
    if p.shape[-1] != len(points):
        raise ValueError(f"expected {len(points)} expression probabilities, got shape {p.shape}")
    p = p / np.clip(p.sum(axis=-1, keepdims=True), 1e-6, None)
    return np.clip(p @ points, -1.0, 1.0)
