"""Aligned face + audio embeddings -> per-person valence/arousal at 25 Hz of data time.

The fusion node's one call into the core. Two modes, two objects behind one interface (`step`,
`reset`, `release`, `model_id`, the embedding model ids they need):
- GRUMode: the trained fusion GRU (any backend), one state per face track (fusion_stream.py);
- PriorMode: no training needed (prior.py); the baseline trained models must beat.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .alignment import BAD_STAMP, DUPLICATE, JUMPED, LATE, STREAMS, StreamAligner
from .circumplex import EXPRESSION_LABELS
from .face_landmarks import BLENDSHAPE_NAMES
from .face_pipeline import Box, FaceResult, release_model
from .fusion_stream import FusionStreams, model_step
from .prior import PriorConfig, PriorFusion
from .speaker import VOICE_ONLY, SpeakerAttribution


@dataclass
class FaceFrame:
    """What the fusion needs from one FaceEmbeddingArray."""
    stamp: float
    frame_id: str
    model_id: str
    faces: list = field(default_factory=list)   # FaceResult
    image_width: int = 0                        # of the camera image the boxes are in (0: unknown)
    affect_source: str = ""                     # where the faces' valence/arousal come from ('' unknown)
    blendshape_names: tuple = ()                # of the faces' blendshapes (face_landmarks on; else ())


@dataclass
class AudioFrame:
    stamp: float
    model_id: str
    embedding: np.ndarray
    voice_probability: float
    loudness_dbfs: float
    affect: tuple = ()     # the voice model's (valence, arousal, dominance), NaN where not given; () none


@dataclass
class PersonAffect:
    track_id: str          # "" = a voice with no face
    valence: float
    arousal: float
    confidence: float
    face: bool            # the face modality contributed at this step
    voice: bool           # the voice modality contributed at this step
    box: Box | None = None
    expression: str = ""  # the face's most probable expression (its model's class name), "" without a face


@dataclass
class FusionStep:
    time: float
    frame_id: str
    people: list           # PersonAffect
    epoch: int = 0         # time base (changes at a confirmed time jump)
    speaker: str | None = None   # whose voice this step (core/speaker.py): None not voiced, "" nobody in view


@dataclass
class AddResult:
    accepted: bool
    time_jump: str | None = None    # one log line when this sample confirmed a time jump


def _expression(face) -> str:
    """The face's most probable expression, by its model's class names (FER2013's when it names none)."""
    labels = getattr(face, "expression_labels", ()) or EXPRESSION_LABELS
    if face is None or not len(face.expression_probabilities) or len(face.expression_probabilities) != len(labels):
        return ""
    return labels[int(np.argmax(face.expression_probabilities))]


class ModelIdMismatch(ValueError):
    pass


# more than this share of a stream's embeddings since the last check too late for their steps: say so
LATE_SHARE_WARN = 0.1
MIN_SPACINGS = 10      # in-order samples before a stream's typical spacing is judged
SPACING_SLACK = 0.002  # s of stamp jitter
# what sets each stream's min_interval, and how to set it right (the fusion node's parameters)
INTERVAL_PARAMETER = {"face": "face_interval: set it to 0.9 / the face node's processing_rate, or 0",
                      "audio": "0.75 x audio_hop: set audio_hop to the audio node's hop"}


class PriorMode:
    """Face valence/arousal of the expression model, smoothed, arousal raised by the voice, or moved
    towards a voice model's own valence/arousal where it gives them (prior.py)."""
    name = "prior"
    needs = {}          # stream -> the embedding model id it must come from ({}: any)

    def __init__(self, reset_after_s: float = 1.0):
        self._prior = PriorFusion(PriorConfig(reset_after_s=reset_after_s))
        self.voice_model_id = ""    # the voice model whose valence/arousal has been fused ('' none yet)
        self.face_source = ""       # 'blendshapes' once faces' valence/arousal came from the blendshape prior

    @property
    def model_id(self) -> str:
        """'prior', '+blendshape_prior' once a face's valence/arousal came from its blendshapes, and
        '+<voice model id>' from the first step that fused a voice model's valence/arousal on: the label
        says what produced the numbers."""
        return "prior" + ("+blendshape_prior" if self.face_source == "blendshapes" else "") + \
            (f"+{self.voice_model_id}" if self.voice_model_id else "")

    @staticmethod
    def visible(faces: dict) -> dict:
        return faces

    def step(self, time: float, faces: dict, audio, speaker) -> list:
        voice = None if audio is None else (audio.voice_probability, audio.loudness_dbfs)
        voice_va = () if audio is None else tuple(audio.affect[:2])
        if any(math.isfinite(x) for x in voice_va):
            self.voice_model_id = audio.model_id
        return self._prior.step(time, {t: np.array([f.valence, f.arousal], np.float32) for t, f in faces.items()
                                       if math.isfinite(f.valence) and math.isfinite(f.arousal)}, voice, speaker,
                                voice_va)

    def reset(self):
        self._prior.reset()

    def release(self):
        pass


class GRUMode:
    """The trained fusion GRU on the face and audio embeddings, one state per track (fusion_stream.py)."""
    name = "gru"

    def __init__(self, model, reset_after_s: float = 1.0):
        a = model.card.model_args
        self.model, self.model_id = model, model.card.model_id
        # what of each face the GRU was trained on: the face model's embedding or the 52 blendshapes
        # (emo_train's face_feature; cards from before it: embedding)
        self.face_feature = a.get("face_feature", "embedding")
        face_id = a.get("face_model_id", "") if self.face_feature == "embedding" else ""
        self.needs = {s: i for s, i in (("face", face_id), ("audio", a.get("audio_model_id", ""))) if i}
        self._streams = FusionStreams(model_step(model), (a["num_layers"], a["hidden_dim"]), a["face_dim"],
                                      a["audio_dim"], reset_after_s)

    def visible(self, faces: dict) -> dict:
        """The faces this mode can fuse (on blendshapes: a face the landmarker did not confirm is not seen,
        so the voice is not given to it either)."""
        if self.face_feature == "blendshapes":
            return {t: f for t, f in faces.items() if f.blendshapes is not None}
        return faces

    def step(self, time: float, faces: dict, audio, speaker) -> list:
        return self._streams.step(time, {t: getattr(f, self.face_feature) for t, f in faces.items()},
                                  None if audio is None else audio.embedding, speaker)

    def reset(self):
        self._streams.reset()

    def release(self):
        release_model(self.model)


MODES = {m.name: m for m in (PriorMode, GRUMode)}


class FusionPipeline:
    def __init__(self, mode, aligner: StreamAligner | None = None, speakers: SpeakerAttribution | None = None,
                 audio_delay: float = 0.0):
        self.fusion = mode           # PriorMode or GRUMode
        self.aligner = aligner or StreamAligner()
        self.counts = Counter()
        self._epoch = 0
        self.speakers = speakers     # None: the voice goes to every face (no attribution)
        # each step fuses the audio of this long before it (s, data time): the aligner places an audio
        # embedding stamped t at t + audio_delay, so a step need not wait for the chunk still being
        # recorded (issue 21 item 3); the same stamps give the same steps live and offline
        self.audio_delay = audio_delay
        self.arrivals = Counter()    # stream -> embeddings given to the aligner
        self._checked = (Counter(), Counter(), Counter())   # arrivals, late and off-clock drops, last checked

    @property
    def mode(self) -> str:
        return self.fusion.name

    @property
    def model_id(self) -> str:
        return self.fusion.model_id

    def release(self):
        self.fusion.release()

    def check_model_id(self, stream: str, model_id: str):
        """Raise ModelIdMismatch if `stream` embeddings come from another model than the GRU was trained on."""
        expected = self.fusion.needs.get(stream)
        if expected and model_id != expected:
            self.counts[f"{stream}_model_mismatch"] += 1
            raise ModelIdMismatch(f"{stream} embeddings come from '{model_id}', but the fusion model "
                                  f"'{self.model_id}' was trained on '{expected}': these are not fused")

    def check_blendshapes(self, frame: FaceFrame):
        """Raise ModelIdMismatch if the GRU was trained on blendshapes and `frame` carries none (or others)."""
        if getattr(self.fusion, "face_feature", "embedding") != "blendshapes" or \
                tuple(frame.blendshape_names) == BLENDSHAPE_NAMES:
            return
        self.counts["face_model_mismatch"] += 1
        got = f"other blendshapes ({len(frame.blendshape_names)} named)" if frame.blendshape_names else \
            "none (the face node's face_landmarks is false)"
        raise ModelIdMismatch(f"the fusion model '{self.model_id}' was trained on MediaPipe's 52 blendshapes, but "
                              f"the face embeddings carry {got}: these are not fused")

    def add_face(self, frame: FaceFrame) -> AddResult:
        self.check_model_id("face", frame.model_id)
        self.check_blendshapes(frame)
        result = self._add("face", frame)
        if result.accepted and self.speakers is not None:
            self.speakers.add_frame(frame.stamp, frame.faces)
        return result

    def add_audio(self, frame: AudioFrame) -> AddResult:
        self.check_model_id("audio", frame.model_id)
        return self._add("audio", frame, frame.stamp + self.audio_delay)

    def timing_health(self) -> tuple[str | None, dict]:
        """Each stream's measured lag (diagnostics values `<stream>_lag_s`: how far its stamps trail the
        other stream's on arrival) and, when more than LATE_SHARE_WARN of a stream's embeddings since
        the last call came too late for their steps, one line saying why and which parameter admits it."""
        al = self.aligner
        values, problem = {}, None
        arrivals, late, off_clock = self._checked
        for s in STREAMS:
            lag = al.measured_lag(s)
            values[f"{s}_lag_s"] = "-" if lag is None else f"{lag:.3f}"
            n, n_late = self.arrivals[s] - arrivals[s], al.stats.late[s] - late[s]
            if problem is None and n and n_late > LATE_SHARE_WARN * n:
                other = next(o for o in STREAMS if o != s)
                if lag is not None and lag > al.max_lag:
                    why = (f": they trail the {other} by {lag:.2f} s (by stamps), more than max_lag "
                           f"({al.max_lag:g} s); raise max_lag (time_jump_threshold must stay above it) or fix "
                           f"the {s} stamps")
                else:
                    why = (f" (measured lag {values[f'{s}_lag_s']} s, max_lag {al.max_lag:g} s, "
                           f"max_wait {al.max_wait:g} s)")
                problem = f"{n_late} of {n} {s} embeddings came after their steps went out{why}"
        for s in STREAMS:
            dropped = al.stats.off_clock[s] - off_clock[s]
            if problem is None and dropped:
                other = next(o for o in STREAMS if o != s)
                problem = (f"{dropped} {s} embeddings dropped: stamped {al.stats.clock_offset[s]:+.1f} s off the "
                           f"{other} stream, which goes on in its time base (two clocks? the {s} node's "
                           "stamp_source, or the driver's stamps)")
        for s in STREAMS:
            spacings, interval = al.stats.spacings[s], al.min_interval.get(s, 0.0)
            # the median: one early frame (jitter, a face node catching up) is not a setting that is wrong
            typical = float(np.median(spacings)) if len(spacings) >= MIN_SPACINGS else None
            if problem is None and typical is not None and typical < interval - SPACING_SLACK:
                problem = (f"{s} embeddings come every {1000 * typical:.0f} ms (median of the last {len(spacings)}), "
                           f"closer than the {1000 * interval:.0f} ms that steps rely on ({INTERVAL_PARAMETER[s]}): "
                           "a step may go out with one when a nearer one is still coming")
        # how far data time had passed a step when it went out (stamps, not the machine's clock)
        waits = al.stats.waits
        values["step_wait_first_s"] = "-" if al.stats.first_wait is None else f"{al.stats.first_wait:.3f}"
        values["step_wait_p95_s"] = f"{np.percentile(waits, 95):.3f}" if waits else "-"
        values["audio_delay_s"] = f"{self.audio_delay:.3f}"
        self._checked = (Counter(self.arrivals), Counter(al.stats.late), Counter(al.stats.off_clock))
        return problem, values

    def _add(self, stream, frame, at: float | None = None) -> AddResult:
        self.arrivals[stream] += 1
        verdict = self.aligner.add(stream, frame.stamp if at is None else at, frame)
        if verdict in (LATE, DUPLICATE):
            self.counts[f"{stream}_late_or_duplicate"] += 1
            return AddResult(False)
        if verdict == BAD_STAMP:
            self.counts["bad_stamps"] += 1
        if verdict == JUMPED:
            self.counts["time_jumps"] += 1
            return AddResult(True, self.aligner.last_jump)
        return AddResult(True)

    def ready(self, flush: bool = False) -> list[FusionStep]:
        """Steps that can be decided now. Raises ValueError for embeddings of the wrong size."""
        steps = []
        for g in self.aligner.ready(flush):
            if g.epoch != self._epoch:     # new time base: per-track state belongs to the old one
                self._epoch = g.epoch
                self.fusion.reset()
                if self.speakers is not None:
                    self.speakers.reset()
            faces = self.fusion.visible({f.track_id: f for f in (g.face.faces if g.face is not None else [])})
            audio = g.audio
            speaker = self._speaker(g, faces)
            if g.face is not None and g.face.affect_source == "blendshapes" and isinstance(self.fusion, PriorMode):
                self.fusion.face_source = "blendshapes"      # the label (model_id) says so from now on
            outs = self.fusion.step(g.time, faces, audio, speaker)
            people = []
            for o in outs:
                if not (math.isfinite(o.valence) and math.isfinite(o.arousal)):
                    self.counts["non_finite_outputs"] += 1
                    continue
                face = faces.get(o.track_id)
                hears = audio is not None and speaker in (None, o.track_id)
                people.append(PersonAffect(o.track_id, o.valence, o.arousal, o.confidence, face is not None,
                                           hears, face.box if face is not None else None, _expression(face)))
            steps.append(FusionStep(g.time, g.face.frame_id if g.face is not None else "", people, g.epoch,
                                    speaker))
        self.counts["steps"] += len(steps)
        return steps

    def add_sound_direction(self, stamp: float, azimuth_deg: float):
        """A microphone array's direction of arrival (camera azimuth, degrees); used with attribution."""
        if self.speakers is not None:
            self.speakers.add_direction(stamp, azimuth_deg)

    def _speaker(self, group, faces) -> str | None:
        """Whose voice this step is (core/speaker.py); None without attribution or audio."""
        if self.speakers is None or group.audio is None:
            return None
        width = group.face.image_width if group.face is not None else 0
        speaker = self.speakers.speaker(group.time, faces, group.audio.voice_probability,
                                        {t: f.box for t, f in faces.items()}, width)
        if speaker is not None:
            self.counts["voiced_steps_voice_only" if speaker == VOICE_ONLY else "voiced_steps_attributed"] += 1
        return speaker


__all__ = ["AddResult", "AudioFrame", "FaceFrame", "FaceResult", "FusionPipeline", "FusionStep", "GRUMode",
           "ModelIdMismatch", "PersonAffect", "PriorMode"]
