"""The 'prior' fusion mode: valence/arousal without any trained fusion model.

Face valence/arousal come from the pretrained expression teacher through the circumplex
(core/circumplex.py), smoothed per track with an exponential moving average in data time.
Voice raises arousal: speaking people are more aroused than silent ones, and louder speech
more so (a coarse but well-documented cue: e.g. Scherer 2003, "Vocal communication of
emotion", Speech Communication 40). This is the baseline that trained models must beat.

With a voice model that gives valence/arousal (a voice model card, core/voice_model.py), its estimate
replaces the loudness cue: a heard face moves towards the voice's valence and arousal by
voice probability x weight, arousal more than valence (the voice carries arousal better than
valence: e.g. the AVEC challenges' audio baselines, Valstar et al. 2016); a voice with no face
in view is the voice model's estimate x voice probability (towards neutral as the voice fades). The
weights are a prior, not fitted to data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .fusion_stream import TrackOutput
from .stream_time import drop_stale


@dataclass
class PriorConfig:
    time_constant_s: float = 0.5     # EMA smoothing of the face estimate
    voice_arousal_gain: float = 0.3  # arousal added at voice probability 1 ...
    loudness_floor_dbfs: float = -50.0   # ... scaled from 0 at this level ...
    loudness_ceiling_dbfs: float = -15.0  # ... to 1 at this level
    voice_valence_weight: float = 0.3    # share of a voice model's valence in a heard face's, at voice probability 1
    voice_arousal_weight: float = 0.5    # ... and of its arousal (replaces the loudness cue)
    reset_after_s: float = 1.0


@dataclass
class PriorFusion:
    config: PriorConfig = field(default_factory=PriorConfig)

    def __post_init__(self):
        self._ema: dict[str, tuple[np.ndarray, float]] = {}

    def step(self, time: float, faces: dict[str, np.ndarray], voice: tuple[float, float] | None,
             voice_to: str | None = None, voice_va: tuple = ()) -> list[TrackOutput]:
        """`faces`: track -> (valence, arousal) face estimate; `voice`: (voice probability, loudness dBFS);
        `voice_to`: whose voice (core/speaker.py): None = everyone's, a track id = only that track's
        arousal is raised, "" = nobody in view: a voice-only estimate next to the faces; `voice_va`: the
        voice model's (valence, arousal), NaN where it gives none, () without a voice model."""
        c = self.config
        drop_stale(self._ema, time, c.reset_after_s, lambda v: v[1])
        boost = 0.0
        if voice is not None:
            prob, loud = voice
            level = np.clip((loud - c.loudness_floor_dbfs) / (c.loudness_ceiling_dbfs - c.loudness_floor_dbfs), 0, 1)
            boost = c.voice_arousal_gain * float(prob) * (0.5 + 0.5 * float(level))
        v_voice, a_voice = (tuple(float(x) for x in voice_va[:2]) if voice is not None and len(voice_va) >= 2
                            else (math.nan, math.nan))
        p = 0.0 if voice is None else float(voice[0])
        out = []
        for tid, va in faces.items():
            va = np.asarray(va, np.float32)
            if tid in self._ema:
                prev, last = self._ema[tid]
                alpha = 1.0 - math.exp(-max(time - last, 0.0) / c.time_constant_s)
                va = prev + alpha * (va - prev)
            self._ema[tid] = (va, time)
            hears = voice is not None and voice_to in (None, tid)
            conf = 0.5 + (0.25 if hears else 0.0)
            v, a = float(va[0]), float(va[1])
            if hears:
                if math.isfinite(v_voice):
                    v += c.voice_valence_weight * p * (v_voice - v)
                a = a + c.voice_arousal_weight * p * (a_voice - a) if math.isfinite(a_voice) else a + boost
            out.append(TrackOutput(tid, float(np.clip(v, -1, 1)), float(np.clip(a, -1, 1)), conf))
        if voice is not None and (not faces or voice_to == ""):
            # the voice model's estimate, towards neutral as the voice fades (as the loudness cue does)
            out.append(TrackOutput("", float(np.clip(p * v_voice, -1, 1)) if math.isfinite(v_voice) else 0.0,
                                   float(np.clip(p * a_voice if math.isfinite(a_voice) else boost, -1, 1)), 0.25 * p))
        return out

    def reset(self):
        """Forget every track's smoothed estimate (a time jump)."""
        self._ema.clear()
