"""Which face track is which annotated person: one rule for training (training/grid.py) and
evaluation (eval/evaluate.py), so a score and the labels a model was trained on name the same face."""
from __future__ import annotations

import numpy as np


def person_tracks(faces: dict, persons: list) -> dict:
    """Annotated person -> face track. One person: the track seen in most frames. Several: the most
    seen tracks, matched left to right to the persons in sorted order (docs/training.md: lab layout).
    `faces`: "track" (N,) track ids and "box" (N, 4) x, y, w, h, one row per frame a face was seen.
    A tie in frames goes to the track id that sorts first."""
    tracks, counts = np.unique(faces["track"], return_counts=True)
    if not len(tracks):
        return {}
    top = [tracks[i] for i in np.argsort(-counts, kind="stable")[:len(persons)]]
    centre = {t: float(np.mean(faces["box"][faces["track"] == t][:, 0] + faces["box"][faces["track"] == t][:, 2] / 2))
              for t in top}
    return dict(zip(sorted(persons), sorted(top, key=centre.get)))
