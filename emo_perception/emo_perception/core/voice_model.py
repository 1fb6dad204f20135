"""A voice model the user brings (an ONNX described by a voice model card; emo_import_model writes one:
inference/voice_card.py):
one analysis window of 16 kHz audio, as raw samples or as a log-mel patch, -> an embedding and/or
valence, arousal and dominance. The audio node runs it as its encoder (audio_model: <card>.json).

The math of the card, ROS-free: how a window becomes the model's input (normalisation, log-mel
parameters, layout) and how its outputs become an embedding and [-1, 1] affect values.
docs/voice_models.md describes the card.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .audio_frontend import SAMPLE_RATE, LogMelConfig, mel_spectrogram
from .face_pipeline import release_model

VOICE_MODEL_KIND = "voice_model"    # the card's `kind`
INPUT_KINDS = ("waveform", "log_mel")
# waveform: raw samples in [-1, 1] ('none') or per window to zero mean and unit variance
# ('zero_mean_unit_var', what wav2vec 2.0 feature extractors do with do_normalize); log_mel: as the
# front end makes it ('none') or (x - mean) / std with the card's mean and std (scalars or per band).
NORMALISATIONS = {"waveform": ("none", "zero_mean_unit_var"), "log_mel": ("none", "mean_std")}
LAYOUTS = ("frames_by_mels", "mels_by_frames")   # the last two axes of a log-mel input
DIMENSIONS = ("valence", "arousal", "dominance")  # the order of AudioResult.affect and the message
NORM_EPS = 1e-7       # variance floor of zero_mean_unit_var (digital silence stays finite)


@dataclass(frozen=True)
class Head:
    """Columns [start, stop) of one model output's last axis (a (batch,) output is one column);
    for valence/arousal/dominance one column, and the model's values for -1 and +1 (`range`)."""
    output: str
    start: int
    stop: int
    low: float = -1.0            # the model's value that means -1 ...
    high: float = 1.0            # ... and +1 (audEERING's wav2vec 2.0 model: 0 .. 1)

    def take(self, outputs: dict) -> np.ndarray:
        return np.asarray(outputs[self.output], np.float32).reshape(1, -1)[0, self.start:self.stop]

    def unit(self, outputs: dict) -> float:
        """The model's value on this project's [-1, 1] scale (linear; not clipped: a model that
        leaves its range shows it in the numbers)."""
        return float(-1.0 + 2.0 * (float(self.take(outputs)[0]) - self.low) / (self.high - self.low))


@dataclass(frozen=True)
class VoiceModelSpec:
    """What a voice model card's `audio` block says, checked against the card's inputs and outputs
    (which the backend checks against the model when it loads it)."""
    input: str                          # the model's input tensor
    kind: str                           # INPUT_KINDS
    input_shape: tuple                  # its shape, batch axis first ("batch" or 1), the rest fixed
    window_s: float
    hop_s: float
    normalisation: str = "none"
    mean: tuple = (0.0,)                # mean_std: one value, or one per mel band
    std: tuple = (1.0,)
    log_mel: LogMelConfig = LogMelConfig()
    log_mel_power: float = 1.0          # 1: magnitude (VGGish, our front end), 2: power spectrum
    layout: str = "frames_by_mels"
    embedding: Head | None = None
    affect: dict = field(default_factory=dict)   # "valence"/"arousal"/"dominance" -> Head
    source: str = ""                    # where the weights come from (shown, not interpreted)
    terms: str = ""                     # under which terms

    @property
    def window_samples(self) -> int:
        return int(round(self.window_s * SAMPLE_RATE))

    @property
    def embedding_dim(self) -> int:
        return 0 if self.embedding is None else self.embedding.stop - self.embedding.start


AUDIO_KEYS = {"input", "kind", "sample_rate", "window_s", "hop_s", "normalisation", "mean", "std", "log_mel",
              "layout", "embedding", *DIMENSIONS, "source", "terms"}
LOG_MEL_KEYS = {"window_length", "hop_length", "n_fft", "n_mels", "f_min", "f_max", "log_offset", "power"}


def _spec(specs, name):
    return next((t for t in specs if t["name"] == name), None)


def _fixed(d) -> bool:
    return isinstance(d, int) and not isinstance(d, bool) and d > 0


def voice_model_spec(card) -> VoiceModelSpec:
    """The card's `audio` block, checked; ValueError in one line naming the card, the key, the value
    and what is allowed."""
    where = f"voice model card '{card.path}'"
    a = dict(card.audio or {})
    if not a:
        raise ValueError(f"{where} has no `audio` block (kind '{card.kind}'); docs/voice_models.md says how to "
                         "write one")
    unknown = sorted(set(a) - AUDIO_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) audio.{', audio.'.join(unknown)}; allowed: "
                         f"{', '.join(sorted(AUDIO_KEYS))}")
    if a.get("sample_rate") != SAMPLE_RATE:
        raise ValueError(f"{where}: audio.sample_rate is {a.get('sample_rate')!r}; allowed: {SAMPLE_RATE} (the audio "
                         "node resamples every stream to 16 kHz: export or pick a 16 kHz model)")
    kind = a.get("kind")
    if kind not in INPUT_KINDS:
        raise ValueError(f"{where}: audio.kind is {kind!r}; allowed: {', '.join(INPUT_KINDS)}")
    window_s, hop_s = a.get("window_s"), a.get("hop_s")
    for key, v in (("window_s", window_s), ("hop_s", hop_s)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 < v <= 30.0:
            raise ValueError(f"{where}: audio.{key} is {v!r}; allowed: seconds in (0, 30]")
    if hop_s > window_s:
        raise ValueError(f"{where}: audio.hop_s is {hop_s}; allowed: <= audio.window_s ({window_s})")
    n = window_s * SAMPLE_RATE
    if abs(n - round(n)) > 1e-6:
        raise ValueError(f"{where}: audio.window_s is {window_s}; allowed: a whole number of 16 kHz samples "
                         f"(e.g. {round(n) / SAMPLE_RATE:g})")
    n = int(round(n))
    norm = a.get("normalisation", "none")
    if norm not in NORMALISATIONS[kind]:
        raise ValueError(f"{where}: audio.normalisation is {norm!r} for kind '{kind}'; allowed: "
                         f"{', '.join(NORMALISATIONS[kind])}")
    used = {"mean": norm == "mean_std", "std": norm == "mean_std", "log_mel": kind == "log_mel",
            "layout": kind == "log_mel"}
    idle = sorted(k for k, needed in used.items() if k in a and not needed)
    if idle:
        raise ValueError(f"{where}: audio.{', audio.'.join(idle)} given, but kind '{kind}' with normalisation "
                         f"'{norm}' does not use it; remove it")
    name = a.get("input")
    spec = _spec(card.inputs, name)
    if spec is None or len(card.inputs) != 1:
        raise ValueError(f"{where}: audio.input is {name!r}; allowed: the card's one input "
                         f"({[t['name'] for t in card.inputs]})")
    shape = list(spec["shape"])
    if spec.get("dtype", "float32") != "float32":
        raise ValueError(f"{where}: input '{name}' is {spec.get('dtype')}; allowed: float32")
    if not shape or shape[0] not in ("batch", 1):
        raise ValueError(f"{where}: input '{name}' has shape {shape}; its first axis must be the batch ('batch' or 1)")
    mel_cfg, power, layout, mean, std = LogMelConfig(), 1.0, a.get("layout", "frames_by_mels"), (0.0,), (1.0,)
    if kind == "waveform":
        want = ([[shape[0], n], [shape[0], 1, n]], f"(batch, {n}) or (batch, 1, {n}): {window_s} s at 16 kHz")
    else:
        m = dict(a.get("log_mel") or {})
        bad = sorted(set(m) - LOG_MEL_KEYS)
        if bad:
            raise ValueError(f"{where}: unknown key(s) audio.log_mel.{', audio.log_mel.'.join(bad)}; allowed: "
                             f"{', '.join(sorted(LOG_MEL_KEYS))}")
        power = float(m.pop("power", 1.0))
        if power not in (1.0, 2.0):
            raise ValueError(f"{where}: audio.log_mel.power is {power}; allowed: 1 (magnitude) or 2 (power)")
        for k, v in m.items():
            whole = isinstance(getattr(LogMelConfig, k), int)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (whole and float(v) != int(v)):
                raise ValueError(f"{where}: audio.log_mel.{k} is {v!r}; allowed: a{' whole' if whole else ''} number")
        mel_cfg = LogMelConfig(**{k: type(getattr(LogMelConfig, k))(v) for k, v in m.items()})
        if not (0 < mel_cfg.window_length <= mel_cfg.n_fft and mel_cfg.hop_length > 0 and mel_cfg.n_mels > 0
                and 0 <= mel_cfg.f_min < mel_cfg.f_max <= SAMPLE_RATE / 2 and mel_cfg.log_offset > 0):
            raise ValueError(f"{where}: audio.log_mel is {m}; allowed: 0 < window_length <= n_fft, hop_length > 0, "
                             "n_mels > 0, 0 <= f_min < f_max <= 8000, log_offset > 0")
        if layout not in LAYOUTS:
            raise ValueError(f"{where}: audio.layout is {layout!r}; allowed: {', '.join(LAYOUTS)}")
        frames, mels = mel_cfg.frames(n), mel_cfg.n_mels
        if frames == 0:
            raise ValueError(f"{where}: audio.window_s {window_s} is shorter than one log-mel frame")
        last = [frames, mels] if layout == "frames_by_mels" else [mels, frames]
        want = ([[shape[0]] + last, [shape[0], 1] + last],
                f"(batch, {last[0]}, {last[1]}) or (batch, 1, {last[0]}, {last[1]}): {window_s} s of "
                f"{mels}-band log-mel every {mel_cfg.hop_length} samples ({layout})")
        if norm == "mean_std":
            mean, std = tuple(np.ravel(a.get("mean", [])).tolist()), tuple(np.ravel(a.get("std", [])).tolist())
            if len(mean) not in (1, mels) or len(std) != len(mean) or min(std) <= 0:
                raise ValueError(f"{where}: audio.mean {list(mean)} and audio.std {list(std)}; allowed: one value "
                                 f"each or {mels} (one per band), std > 0")
    if shape not in want[0]:
        raise ValueError(f"{where}: input '{name}' has shape {shape}; audio.kind '{kind}' and audio.window_s need "
                         f"{want[1]} (a voice card fixes the length the model gets)")
    heads = {key: _head(card, where, key, a[key]) for key in ("embedding", *DIMENSIONS) if a.get(key) is not None}
    if not heads:
        raise ValueError(f"{where}: none of audio.embedding, audio.valence, audio.arousal, audio.dominance is given: "
                         "the model would give the node nothing")
    return VoiceModelSpec(name, kind, tuple(shape), float(window_s), float(hop_s), norm, mean, std, mel_cfg, power,
                          layout, heads.pop("embedding", None), heads, str(a.get("source", "")),
                          str(a.get("terms", "")))


def _head(card, where: str, key: str, h) -> Head:
    out = _spec(card.outputs, h.get("output")) if isinstance(h, dict) else None
    if out is None:
        raise ValueError(f"{where}: audio.{key} is {h!r}; allowed: {{\"output\": one of "
                         f"{[t['name'] for t in card.outputs]}, \"start\": i, \"stop\": j}}")
    shape = list(out["shape"])
    if not 1 <= len(shape) <= 2 or shape[0] not in ("batch", 1) or (len(shape) == 2 and not _fixed(shape[1])):
        raise ValueError(f"{where}: output '{out['name']}' has shape {shape}; allowed: (batch,) or (batch, K) with "
                         "K fixed (pool over time inside the exported model)")
    width = shape[1] if len(shape) == 2 else 1
    start = int(h.get("start", 0))
    stop = int(h["stop"]) if h.get("stop") is not None else (start + 1 if key in DIMENSIONS else width)
    if not 0 <= start < stop <= width:
        raise ValueError(f"{where}: audio.{key} takes columns {start}..{stop} of output '{out['name']}' (last axis "
                         f"{width}); allowed: 0 <= start < stop <= {width}")
    if key in DIMENSIONS and stop - start != 1:
        raise ValueError(f"{where}: audio.{key} takes {stop - start} columns; allowed: one")
    low, high = (h.get("range") or (-1.0, 1.0)) if key in DIMENSIONS else (-1.0, 1.0)
    if not float(low) < float(high):
        raise ValueError(f"{where}: audio.{key}.range is {[low, high]}; allowed: [low, high] with low < high")
    return Head(out["name"], start, stop, float(low), float(high))


class VoiceModelEncoder:
    """The audio node's encoder for a voice model card: AudioPipeline gives it the window's samples
    and `run` returns the embedding and valence/arousal/dominance of one model call."""

    input = "samples"

    def __init__(self, model, spec: VoiceModelSpec):
        self.model, self.spec = model, spec
        self.model_id = model.card.model_id
        self.dim = spec.embedding_dim

    def prepare(self, samples: np.ndarray) -> np.ndarray:
        """16 kHz window (N,) -> the model's input, batch 1, in the card's shape."""
        s = self.spec
        x = np.asarray(samples, np.float32)
        if x.size != s.window_samples:
            raise ValueError(f"voice model window has {x.size} samples, its card says {s.window_samples} "
                             "(audio_embedding_node's window must be the card's audio.window_s)")
        if s.kind == "waveform":
            if s.normalisation == "zero_mean_unit_var":
                x = (x - x.mean()) / np.sqrt(x.var() + NORM_EPS)
        else:
            # (frames, n_mels): log(mel + offset) of the front end's own filterbank (core/audio_frontend.py)
            x = np.log(mel_spectrogram(x, s.log_mel, power=s.log_mel_power) + s.log_mel.log_offset)
            if s.normalisation == "mean_std":
                x = (x - np.asarray(s.mean, np.float64)) / np.asarray(s.std, np.float64)
            if s.layout == "mels_by_frames":
                x = x.T
        return np.ascontiguousarray(x, np.float32).reshape((1,) + tuple(s.input_shape[1:]))

    def run(self, samples: np.ndarray) -> tuple[np.ndarray, tuple]:
        """(embedding (dim,), (valence, arousal, dominance) on [-1, 1], NaN where the model gives none)."""
        out = self.model.run({self.spec.input: self.prepare(samples)})
        emb = self.spec.embedding.take(out) if self.spec.embedding else np.zeros(0, np.float32)
        affect = tuple(self.spec.affect[d].unit(out) if d in self.spec.affect else math.nan for d in DIMENSIONS)
        return np.ascontiguousarray(emb, np.float32), affect

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        return self.run(samples)[0]

    def release(self):
        release_model(self.model)
