"""Aligned face + audio embeddings -> per-person valence/arousal at 25 Hz of data time.

The fusion node's one call into the core. Two modes:
- "gru": the trained fusion GRU (any backend), one state per face track (fusion_stream.py);
- "prior": no training needed (prior.py); the baseline trained models must beat.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .alignment import StreamAligner
from .fusion_stream import FusionStreams, TrackOutput
from .prior import PriorFusion

MODES = ("prior", "gru")


@dataclass
class FaceFrame:
    """What the fusion needs from one FaceEmbeddingArray."""
    stamp: float
    frame_id: str
    model_id: str
    faces: dict = field(default_factory=dict)   # track id -> (embedding (E,), (valence, arousal), box)


@dataclass
class AudioFrame:
    stamp: float
    model_id: str
    embedding: np.ndarray
    voice_probability: float
    loudness_dbfs: float


@dataclass
class FusionStep:
    time: float
    frame_id: str
    people: list          # TrackOutput
    boxes: dict           # track id -> box
    face_present: bool
    audio_present: bool


class ModelIdMismatch(ValueError):
    pass


class FusionPipeline:
    def __init__(self, mode: str, model=None, aligner: StreamAligner | None = None, reset_after_s: float = 1.0):
        if mode not in MODES:
            raise ValueError(f"fusion mode '{mode}' unknown; choose one of {MODES}")
        self.mode = mode
        self.aligner = aligner or StreamAligner()
        self.face_model_id = self.audio_model_id = ""
        if mode == "gru":
            if model is None:
                raise ValueError("mode 'gru' needs a fusion model")
            a = model.card.model_args
            self.face_model_id, self.audio_model_id = a.get("face_model_id", ""), a.get("audio_model_id", "")

            def step(face, audio, mask, state):
                out = model.run({"face": face, "audio": audio, "mask": mask, "state": state})
                return out["valence_arousal"], out["confidence"], out["state_out"]

            self._gru = FusionStreams(step, (a["num_layers"], a["hidden_dim"]), a["face_dim"], a["audio_dim"],
                                      reset_after_s)
            self.model_id = model.card.model_id
        else:
            self._prior = PriorFusion()
            self._prior.config.reset_after_s = reset_after_s
            self.model_id = "prior"

    def check_model_id(self, stream: str, model_id: str):
        """Raise ModelIdMismatch if `stream` embeddings come from another model than the GRU was trained on."""
        expected = self.face_model_id if stream == "face" else self.audio_model_id
        if self.mode == "gru" and expected and model_id != expected:
            raise ModelIdMismatch(f"{stream} embeddings come from '{model_id}', but the fusion model "
                                  f"'{self.model_id}' was trained on '{expected}': these are not fused")

    def add_face(self, frame: FaceFrame) -> bool:
        self.check_model_id("face", frame.model_id)
        return self.aligner.add("face", frame.stamp, frame)

    def add_audio(self, frame: AudioFrame) -> bool:
        self.check_model_id("audio", frame.model_id)
        return self.aligner.add("audio", frame.stamp, frame)

    def ready(self, flush: bool = False) -> list[FusionStep]:
        steps = []
        for g in self.aligner.ready(flush):
            face, audio = g.face, g.audio
            faces = face.faces if face is not None else {}
            if self.mode == "gru":
                people = self._gru.step(g.time, {t: f[0] for t, f in faces.items()},
                                        None if audio is None else audio.embedding)
            else:
                voice = None if audio is None else (audio.voice_probability, audio.loudness_dbfs)
                people = self._prior.step(g.time, {t: np.asarray(f[1], np.float32) for t, f in faces.items()
                                                   if np.all(np.isfinite(f[1]))}, voice)
            steps.append(FusionStep(g.time, face.frame_id if face else "", people,
                                    {t: f[2] for t, f in faces.items()}, face is not None, audio is not None))
        return steps


__all__ = ["AudioFrame", "FaceFrame", "FusionPipeline", "FusionStep", "ModelIdMismatch", "TrackOutput"]
