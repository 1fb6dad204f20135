"""Held-out sessions through the fusion node's own pipeline (build_fusion_pipeline: aligner,
speaker attribution, `prior` or the exported GRU on ONNX Runtime), fed the cached face and audio
features as the node would receive them. This scores the exported bundle as the robot runs it, and
the `prior` mode as the baseline a trained model must beat."""
from __future__ import annotations

import numpy as np

from ..core.fusion_pipeline import AudioFrame, FaceFrame
from ..core.face_landmarks import BLENDSHAPE_NAMES
from ..core.face_pipeline import FaceResult
from ..runtime.build import build_fusion_pipeline
from ..runtime.config import FusionConfig
from .features import T0
from .grid import ccc_scores, grid_times, labels_at, person_tracks


def _face_frames(faces) -> list:
    frames = []
    rows_by_time = {}
    for r, t in enumerate(faces["time"]):
        rows_by_time.setdefault(float(t), []).append(r)
    probs = np.exp(faces["logits"])
    shapes = faces.get("blendshapes")     # extracted with the landmarker: NaN rows = no face confirmed
    names = BLENDSHAPE_NAMES if shapes is not None else ()

    def blendshapes(r):
        return shapes[r] if shapes is not None and np.isfinite(shapes[r]).all() else None

    for ft in faces["frame_times"]:
        results = [FaceResult(str(faces["track"][r]), tuple(int(v) for v in faces["box"][r]), 1.0, 1,
                              faces["embedding"][r], probs[r], float(faces["va"][r, 0]), float(faces["va"][r, 1]),
                              mouth_activity=float(faces["mouth"][r]), blendshapes=blendshapes(r))
                   for r in rows_by_time.get(float(ft), [])]
        frames.append(FaceFrame(T0 + float(ft), "camera", str(faces["model_id"]), results, blendshape_names=names))
    return frames


def replay(faces, audio, cfg: FusionConfig) -> list:
    """Every FusionStep of the session, in order (stamps back in seconds from the media start)."""
    pipeline = build_fusion_pipeline(cfg)
    events = [(f.stamp, 0, pipeline.add_face, f) for f in _face_frames(faces)] if faces is not None else []
    if audio is not None:
        events += [(T0 + float(t), 1, pipeline.add_audio,
                    AudioFrame(T0 + float(t), str(audio["model_id"]), audio["embedding"][k], float(audio["voice"][k]),
                               float(audio["loudness"][k]))) for k, t in enumerate(audio["time"])]
    steps = []
    for _, _, add, frame in sorted(events, key=lambda e: (e[0], e[1])):
        add(frame)
        steps += pipeline.ready()
    steps += pipeline.ready(flush=True)
    pipeline.release()
    for s in steps:
        s.time -= T0
    return steps


def person_series(steps, track: str | None, grid: np.ndarray) -> np.ndarray:
    """(T, 2) the person's output held onto the grid (the robot keeps its last estimate; 0 before
    the first); the voice-only estimate ("") stands in while the face is not in view."""
    out = np.zeros((len(grid), 2))
    last = np.zeros(2)
    k = 0
    by_time = sorted(steps, key=lambda s: s.time)
    for i, t in enumerate(grid):
        while k < len(by_time) and by_time[k].time <= t + 1e-6:
            people = {p.track_id: p for p in by_time[k].people}
            p = people.get(track) if track is not None else None
            p = p or people.get("")
            if p is not None:
                last = np.array([p.valence, p.arousal])
            k += 1
        out[i] = last
    return out


def score_sessions(items, cfg: FusionConfig, delay: float) -> dict:
    """items: (session, faces, audio, span) -> CCC per session and pooled, as the node would do."""
    pred, gold = {}, {}
    for session, faces, audio, span in items:
        grid = grid_times(*span)
        steps = replay(faces, audio, cfg)
        tracks = person_tracks(faces, list(session.annotations.series)) if faces is not None else {}
        for person, series in session.annotations.series.items():
            name = f"{session.name}/{person}" if len(session.annotations.series) > 1 else session.name
            pred[name] = person_series(steps, tracks.get(person), grid)
            gold[name] = labels_at(series, grid, delay)
    return ccc_scores(pred, gold)
