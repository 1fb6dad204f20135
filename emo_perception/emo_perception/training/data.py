"""What every stage does with its data sets: read them, compute each session's cached features,
and skip what cannot be used with a logged reason that the stage summary counts."""
from __future__ import annotations

import sys
from collections import Counter

import numpy as np

from ..core.face_detection import DETECT_MANY_BATCH
from ..runtime.config import AudioConfig, FaceConfig
from .features import SessionUnusable, audio_features, face_features
from .sessions import DataSet, held_out_warning, read_dataset

SILENT_DBFS = -60.0     # a track whose loudest sample is below this is taken as silent


class Skips:
    """Sessions/items left out, by reason; printed once each (rank 0) and counted in the summary."""

    def __init__(self, verbose: bool = True):
        self.items, self.warnings, self.verbose = [], [], verbose

    def add(self, name: str, reason: str):
        self.items.append((name, reason))
        if self.verbose:
            print(f"emo_train: skipped {name}: {reason}", file=sys.stderr)

    def warn(self, text: str):
        """Data that is used, but not all as it may seem (sessions.py's DataSet.warnings)."""
        self.warnings.append(text)
        if self.verbose:
            print(f"emo_train: warning: {text}", file=sys.stderr)

    def summary(self) -> dict:
        short = Counter(r.split(":")[0].split(" (")[0] for _, r in self.items)
        return {"skipped": len(self.items), "skipped_by_reason": dict(short),
                "skipped_items": [f"{n}: {r}" for n, r in self.items], "warnings": list(self.warnings)}


def read_all(cfg, skips: Skips) -> DataSet:
    out, sources = DataSet(), []
    for source in cfg.data:
        ds = read_dataset(source["root"], source["format"], cfg.val_fraction)
        sources.append((f"{source['format']}:{source['root']}", ds))
        out.sessions += ds.sessions
        out.images += ds.images
        for name, reason in ds.skipped:
            skips.add(name, reason)
        for text in ds.warnings:
            skips.warn(text)
    if held_out_warning(sources):
        skips.warn(held_out_warning(sources))
    return out


def extract_device(cfg) -> str:
    """The device the extraction's models run on: run.py resolves 'auto' (extract.py); unresolved, cpu."""
    return "cpu" if cfg.extract_device == "auto" else cfg.extract_device


def detect_batch(cfg) -> int:
    """Frames per detector call while extracting: batched on a GPU; one at a time on a CPU, where
    ONNX Runtime ran batches of 8 at 0.81x the frame-by-frame rate (bench_extraction --detector-only)."""
    return DETECT_MANY_BATCH if extract_device(cfg).startswith("cuda") else 1


def face_config(cfg, model: str, landmarks: bool = False) -> FaceConfig:
    """The face node's config for extraction with `model`; `landmarks`: with MediaPipe's landmarker
    (the faces' blendshapes, and their lip activity from jawOpen, as the node with face_landmarks)."""
    return FaceConfig(face_model=model, detector=cfg.detector, detector_max_width=cfg.detector_max_width,
                      processing_rate=cfg.face_fps, threads=cfg.threads or FaceConfig.threads,
                      backend=cfg.extract_backend, device=extract_device(cfg), face_landmarks=landmarks)


def audio_config(cfg, model: str) -> AudioConfig:
    return AudioConfig(audio_model=model, threads=1, backend=cfg.extract_backend, device=extract_device(cfg))


def session_faces(cfg, session, model: str, skips: Skips, keep_crops=False, need_face=True, landmarks=False):
    try:
        faces = face_features(session, face_config(cfg, model, landmarks), cfg.cache_dir, keep_crops,
                              cfg.extract_batch, detect_batch(cfg))
    except SessionUnusable as err:
        skips.add(session.name, f"media unusable: {err}")
        return None
    if need_face and not len(faces["time"]):
        skips.add(session.name, f"no face found: none in {len(faces['frame_times'])} frames")
        return None
    return faces


def session_audio(cfg, session, model: str, skips: Skips, need_sound=True):
    try:
        audio = audio_features(session, audio_config(cfg, model), cfg.cache_dir, cfg.extract_batch)
    except SessionUnusable as err:
        skips.add(session.name, f"no usable audio: {err}")
        return None
    if need_sound and float(audio["peak_dbfs"]) < SILENT_DBFS:
        skips.add(session.name, f"silent audio (peak {float(audio['peak_dbfs']):.0f} dBFS < {SILENT_DBFS:.0f})")
        return None
    return audio


def media_end(faces, audio) -> float:
    ends = []
    if faces is not None and len(faces["frame_times"]):
        ends.append(float(faces["frame_times"][-1]))
    if audio is not None and len(audio["time"]):
        ends.append(float(audio["time"][-1]))
    return min(ends) if ends else 0.0


def labelled_span(session, end: float, skips: Skips, delay: float = 0.0):
    """(start, stop) of the annotation that the media covers; None (skipped) if under 1 s or no
    finite label. Annotation past the media is counted, not an error (raters stop late)."""
    ann = session.annotations
    if ann is None:
        return None
    t0, t1 = ann.span()
    finite = any(np.isfinite(s["valence"]).any() or np.isfinite(s["arousal"]).any() for s in ann.series.values())
    if not finite:
        skips.add(session.name, "no finite labels (all NaN)")
        return None
    stop = min(t1 - delay, end)
    if stop - t0 < 1.0:
        skips.add(session.name, f"length mismatch: annotation {t0:.1f}-{t1:.1f} s, media 0-{end:.1f} s "
                                f"(delay {delay:.1f} s): under 1 s in common")
        return None
    if t1 - delay > end + 0.5:
        skips.add(f"{session.name} (tail)", f"annotation past the media: {t1 - delay - end:.1f} s of annotation "
                                            "after the media ends are left out; the rest is used")
    return t0, stop
