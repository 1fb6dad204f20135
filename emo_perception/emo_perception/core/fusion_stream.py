"""Streaming fusion: one recurrent state per face track, stepped once per 25 Hz grid point.

`step_fn` is the backend's fusion model run for one step: given face (B, 1, Df), audio
(B, 1, Da), mask (B, 1, 2) and state (L, B, H) it returns valence/arousal (B, 1, 2),
confidence (B, 1, 1) and the new state. Because each step feeds back the state the model
returned, the streamed outputs equal those of the whole sequence run at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .stream_time import drop_stale


@dataclass
class TrackOutput:
    track_id: str
    valence: float
    arousal: float
    confidence: float


class FusionStreams:
    def __init__(self, step_fn: Callable, state_shape: tuple[int, int], face_dim: int, audio_dim: int,
                 reset_after_s: float = 1.0):
        self.step_fn = step_fn
        self.layers, self.hidden = state_shape
        self.face_dim, self.audio_dim = face_dim, audio_dim
        self.reset_after_s = reset_after_s
        self._states: dict[str, tuple[np.ndarray, float]] = {}   # track -> (state (L, 1, H), last time)

    def step(self, time: float, faces: dict[str, np.ndarray], audio: np.ndarray | None,
             audio_to: str | None = None) -> list[TrackOutput]:
        """One grid step. `faces`: track id -> embedding (tracks seen at this step); `audio` or None;
        `audio_to`: whose voice it is (core/speaker.py): None = everyone's context (no one speaking),
        a track id = only that track hears it, "" = nobody in view (a voice-only estimate).

        With no face at all but audio present, a voice-only estimate is made under track id "".
        Tracks unseen for more than `reset_after_s` lose their state (a returning person starts fresh).
        """
        drop_stale(self._states, time, self.reset_after_s, lambda v: v[1])
        ids = list(faces)
        if audio is not None and (not ids or audio_to == ""):
            ids.append("")
        if not ids:
            return []
        b = len(ids)
        face = np.zeros((b, 1, self.face_dim), np.float32)
        mask = np.zeros((b, 1, 2), np.float32)
        for i, tid in enumerate(ids):
            if tid in faces:
                emb = np.asarray(faces[tid], np.float32)
                if emb.shape != (self.face_dim,):
                    raise ValueError(f"face embedding of track {tid} has shape {emb.shape}; "
                                     f"expected ({self.face_dim},)")
                face[i, 0], mask[i, 0, 0] = emb, 1.0
        aud = np.zeros((b, 1, self.audio_dim), np.float32)
        if audio is not None:
            audio = np.asarray(audio, np.float32)
            if audio.shape != (self.audio_dim,):
                raise ValueError(f"audio embedding has shape {audio.shape}; expected ({self.audio_dim},)")
            for i, tid in enumerate(ids):
                if audio_to is None or tid in (audio_to, ""):
                    aud[i, 0], mask[i, 0, 1] = audio, 1.0
        state = np.concatenate([self._state(tid) for tid in ids], axis=1)   # (L, B, H)
        va, conf, new_state = self.step_fn(face, aud, mask, state)
        out = []
        for i, tid in enumerate(ids):
            self._states[tid] = (np.ascontiguousarray(new_state[:, i:i + 1]), time)
            out.append(TrackOutput(tid, float(va[i, 0, 0]), float(va[i, 0, 1]), float(conf[i, 0, 0])))
        return out

    def _state(self, tid):
        if tid in self._states:
            return self._states[tid][0]
        return np.zeros((self.layers, 1, self.hidden), np.float32)

    def reset(self):
        """Forget every track's state (a time jump: the states belong to another time base)."""
        self._states.clear()


def model_step(model) -> Callable:
    """The step function of FusionStreams for an exported fusion model behind any backend."""
    def step(face, audio, mask, state):
        out = model.run({"face": face, "audio": audio, "mask": mask, "state": state})
        return out["valence_arousal"], out["confidence"], out["state_out"]
    return step
