"""A voice model the user downloaded (ONNX) -> a voice model card the audio node loads
(`emo_import_model <onnx> --preset audeering-w2v2-dim`, or the generic form with --voice-input).

The card's `audio` block (its keys: core/voice_model.py) says what the model takes (16 kHz samples
or a log-mel patch, the window, the hop, the normalisation) and which outputs are the embedding,
valence, arousal and dominance. The ONNX file is checked against the preset or the arguments and
run once on a silent window before the card is written; nothing is downloaded, nothing is copied.
docs/voice_models.md says where the preset's model comes from and under which terms.
"""
from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass, field

import numpy as np

from ..core.audio_frontend import SAMPLE_RATE, LogMelConfig
from ..core.voice_model import DIMENSIONS, INPUT_KINDS, VOICE_MODEL_KIND, voice_model_spec
from .model_card import CARD_FORMAT, ONNX_DTYPES, ModelCard, ModelFileError, parse_output_items, sha256

AUDEERING_TERMS = ("weights: audEERING's w2v2-L-robust-12 (Wagner et al. 2023), wav2vec 2.0 fine-tuned on MSP-Podcast, "
                   "CC BY-NC-SA 4.0 (non-commercial, share alike); doi:10.5281/zenodo.6221127, "
                   "github.com/audeering/w2v2-how-to")
VOICE_ROLES = ("embedding", *DIMENSIONS)
VOICE_OUTPUTS_HELP = ("voice models: ROLE:OUTPUT[start:stop] items, comma-separated; roles: embedding, valence, "
                      "arousal, dominance ([i]: one column of the output's last axis; none: all of it)")


class VoiceImportError(ValueError):
    """The ONNX file does not fit the preset or the arguments; the text names what differs."""


@dataclass
class VoicePreset:
    input: str
    kind: str
    window_s: float
    hop_s: float
    normalisation: str
    outputs: dict                          # role -> (output, start, stop or None)
    range: tuple = (-1.0, 1.0)             # the model's values for -1 and +1 (valence/arousal/dominance)
    widths: dict = field(default_factory=dict)   # output -> the last-axis size it must have
    terms: str = ""


VOICE_PRESETS = {
    # audEERING's published ONNX (audonnx): input `signal` (1, samples) at 16 kHz; outputs `hidden_states`
    # (1, 1024), the pooled last transformer layer, and `logits` (1, 3): arousal, dominance, valence in
    # about 0..1 (its README and notebook). Window and hop are our choice (2 s every 0.5 s), not theirs.
    "audeering-w2v2-dim": VoicePreset(
        "signal", "waveform", 2.0, 0.5, "zero_mean_unit_var",
        {"embedding": ("hidden_states", 0, None), "arousal": ("logits", 0, 1), "dominance": ("logits", 1, 2),
         "valence": ("logits", 2, 3)}, (0.0, 1.0), {"hidden_states": 1024, "logits": 3}, AUDEERING_TERMS),
}


def parse_voice_outputs(text: str) -> dict:
    """'embedding:hidden,valence:logits[2]' -> {role: (output, start, stop or None)}."""
    return parse_output_items(text, {r: r for r in VOICE_ROLES}, VoiceImportError, VOICE_OUTPUTS_HELP)


def import_voice_model(onnx_path, out=None, preset: str | None = None, name: str | None = None,
                       input_name: str | None = None, kind: str | None = None, window_s: float | None = None,
                       hop_s: float | None = None, normalisation: str | None = None, outputs: str | None = None,
                       value_range=None, mean=None, std=None, terms: str | None = None) -> ModelCard:
    """Check `onnx_path` against the preset (or the generic arguments) and write its voice card to
    `out` (default: beside the ONNX, <stem>.json); arguments given with a preset override it. Returns
    the card as the audio node will read it. VoiceImportError / ModelFileError in one line."""
    import onnxruntime as ort

    onnx_path = pathlib.Path(onnx_path)
    if not onnx_path.is_file():
        raise ModelFileError(f"ONNX file '{onnx_path}' does not exist; download or export it first "
                             "(docs/voice_models.md says where the preset's model comes from)")
    if preset is not None and preset not in VOICE_PRESETS:
        raise VoiceImportError(f"--preset '{preset}' is not a voice preset; allowed: {', '.join(VOICE_PRESETS)}")
    p = VOICE_PRESETS.get(preset)
    kind = kind or (p.kind if p else None)
    if kind not in INPUT_KINDS:
        raise VoiceImportError(f"--voice-input is {kind!r}; allowed: {', '.join(INPUT_KINDS)}")
    try:
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    except Exception as err:   # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelFileError(f"ONNX Runtime cannot load '{onnx_path}': {err}") from err
    dims = lambda shape: [d if isinstance(d, int) and d > 0 else None for d in shape]  # noqa: E731
    ins = [(a.name, dims(a.shape), ONNX_DTYPES.get(a.type, a.type)) for a in session.get_inputs()]
    outs = [(a.name, dims(a.shape), ONNX_DTYPES.get(a.type, a.type)) for a in session.get_outputs()]
    what = f"'{onnx_path}'" + (f" (preset {preset})" if preset else "")

    want = input_name or (p.input if p else (ins[0][0] if len(ins) == 1 else None))
    found = next((i for i in ins if i[0] == want), None)
    if found is None or len(ins) != 1:
        raise VoiceImportError(f"{what} has inputs {[i[0] for i in ins]}; expected one audio input "
                               f"{want!r} (name it with --input)")
    _, in_shape, in_dtype = found
    window_s = float(window_s if window_s is not None else (p.window_s if p else 0.0))
    hop_s = float(hop_s if hop_s is not None else (p.hop_s if p else 0.0))
    if window_s <= 0 or hop_s <= 0:
        raise VoiceImportError(f"--window {window_s} and --hop {hop_s}: give both, in seconds (> 0)")
    n = int(round(window_s * SAMPLE_RATE))
    mel = LogMelConfig()
    tail = [n] if kind == "waveform" else [mel.frames(n), mel.n_mels]
    if in_dtype != "float32" or len(in_shape) not in (len(tail) + 1, len(tail) + 2) or in_shape[0] not in (1, None) \
            or any(d not in (None, w) for d, w in zip(in_shape[-len(tail):], tail)) \
            or (len(in_shape) == len(tail) + 2 and in_shape[1] not in (1, None)):
        shown = ["?" if d is None else d for d in in_shape]
        raise VoiceImportError(f"{what}: input '{want}' is {in_dtype} {shown}; a {kind} voice model of "
                               f"{window_s:g} s windows needs float32 [N, {', '.join(map(str, tail))}] (or [N, 1, "
                               f"{', '.join(map(str, tail))}])")
    shape = [1 if in_shape[0] == 1 else "batch"] + ([1] if len(in_shape) == len(tail) + 2 else []) + tail

    roles = dict(p.outputs) if p else {}
    if outputs:
        roles.update(parse_voice_outputs(outputs))
    if not roles:
        raise VoiceImportError(f"{what}: no outputs named; give --outputs ({VOICE_OUTPUTS_HELP}) or a --preset")
    by_name = {o[0]: o for o in outs}
    for role, (oname, _, _) in roles.items():
        if oname not in by_name:
            raise VoiceImportError(f"{what}: --outputs names '{oname}' for {role}; the model's outputs are "
                                   f"{[o[0] for o in outs]}")

    # one run on a silent window: the outputs' real sizes (declared sizes are often left open)
    ran = session.run(None, {want: np.zeros([1 if d == "batch" else d for d in shape], np.float32)})
    actual = {o[0]: list(np.shape(r)) for o, r in zip(outs, ran)}
    for oname, width in (p.widths.items() if p else ()):
        if actual.get(oname, [None])[-1] != width:
            raise VoiceImportError(f"{what}: output '{oname}' has shape {actual.get(oname)}; the preset expects its "
                                   f"last axis to be {width}")
    low, high = tuple(float(v) for v in (value_range if value_range is not None else (p.range if p else (-1, 1))))
    audio = {"input": want, "kind": kind, "sample_rate": SAMPLE_RATE, "window_s": window_s, "hop_s": hop_s,
             "normalisation": normalisation or (p.normalisation if p else "none")}
    if mean is not None or std is not None:
        audio.update(mean=[float(v) for v in mean or ()], std=[float(v) for v in std or ()])
    for role, (oname, start, stop) in roles.items():
        head = {"output": oname, "start": int(start), "stop": None if stop is None else int(stop)}
        if role in DIMENSIONS:
            head["range"] = [low, high]
        audio[role] = head
    audio["source"] = f"emo_import_model --preset {preset}" if preset else "emo_import_model (generic voice form)"
    audio["terms"] = terms or (p.terms if p else "")

    out = pathlib.Path(out) if out else onnx_path.with_suffix(".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    name = name or onnx_path.stem
    digest = sha256(onnx_path)
    out_specs = []
    for oname, declared, dtype in outs:
        run = actual[oname]
        fixed = [declared[0] if declared and declared[0] else ("batch" if shape[0] == "batch" else 1)] + run[1:]
        out_specs.append({"name": oname, "shape": fixed, "dtype": dtype})
    card = ModelCard(name=name, kind=VOICE_MODEL_KIND, model_id=f"{name}@{digest[:12]}",
                     inputs=[{"name": want, "shape": shape, "dtype": "float32"}], outputs=out_specs,
                     onnx=os.path.relpath(onnx_path.resolve(), out.parent.resolve()), onnx_sha256=digest,
                     normalisation=f"{kind} windows of {window_s:g} s every {hop_s:g} s at 16 kHz, "
                                   f"{audio['normalisation']} (core/voice_model.py)",
                     audio=audio, format=CARD_FORMAT)
    card.path = str(out.resolve())
    try:
        voice_model_spec(card)       # what the audio node will read: refused here, not on the robot
    except ValueError as err:
        raise VoiceImportError(str(err)) from err
    card.save(out)
    return card
