"""A face model the user downloaded (ONNX) -> a model card the face node loads: `emo_import_model`.

The card's `face` block (its keys: core/face_model_io.py) says how crops are made for the model
(size, channel order, normalisation, crop margin) and which outputs are expression logits (with
their class names), valence and arousal. Presets hold what HSEmotion's and EmoNet's published code
does (read from their code, docs/face_models.md); the generic form takes the same facts as
arguments. The ONNX file is checked against them (input and output names, ranks, sizes) and run
once on a blank batch before the card is written; nothing is downloaded, nothing is copied.
"""
from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass, field

import numpy as np

from ..core.face_model_io import CHANNELS, face_model_io
from .model_card import CARD_FORMAT, ONNX_DTYPES, ModelCard, ModelFileError, parse_output_items, sha256

IMPORTED_KIND = "imported_face_model"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HSEMOTION_8 = ("Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise")
HSEMOTION_7 = ("Anger", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise")
EMONET_8 = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt")
EMONET_5 = EMONET_8[:5]
FIRST = ""      # a preset's output name for "the model's one output, whatever it is called"
HSEMOTION_TERMS = ("weights: HSEmotion (A. Savchenko), trained on AffectNet, whose licence allows non-commercial "
                   "research only; code Apache-2.0; from github.com/av-savchenko/face-emotion-recognition, "
                   "models/affectnet_emotions/onnx/")
EMONET_TERMS = ("code and weights: EmoNet (Toisoul et al. 2021, github.com/face-analysis/emonet), CC BY-NC-ND 4.0: "
                "non-commercial, no derivatives shared (keep the exported ONNX to yourself); trained on AffectNet "
                "(non-commercial research)")


class ImportModelError(ValueError):
    """The ONNX file does not fit the preset or the arguments; the text names what differs."""


@dataclass
class Preset:
    size: int
    channels: str
    mean: tuple
    std: tuple
    outputs: dict                 # role -> (output name or FIRST, start, stop)
    labels: tuple
    terms: str
    input: str = FIRST            # FIRST: the model's one input
    crop_margin: float = 0.0
    widths: dict = field(default_factory=dict)   # output name (or FIRST) -> the last-axis size it must have


def _hsemotion(size: int, labels: tuple, va: bool) -> Preset:
    k = len(labels)
    outputs = {"expression_logits": (FIRST, 0, k)}
    if va:
        outputs.update(valence=(FIRST, k, k + 1), arousal=(FIRST, k + 1, k + 2))
    return Preset(size, "rgb", IMAGENET_MEAN, IMAGENET_STD, outputs, labels, HSEMOTION_TERMS,
                  widths={FIRST: k + 2 if va else k})


def _emonet(labels: tuple) -> Preset:
    # our docs' export (docs/face_models.md) names them so: image -> heatmap, expression, valence, arousal
    return Preset(256, "rgb", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0),
                  {"expression_logits": ("expression", 0, len(labels)), "valence": ("valence", 0, 1),
                   "arousal": ("arousal", 0, 1)}, labels, EMONET_TERMS, input="image",
                  widths={"expression": len(labels)})


PRESETS = {
    "hsemotion-enet_b0_8_va_mtl": _hsemotion(224, HSEMOTION_8, va=True),
    "hsemotion-enet_b0_8_best_afew": _hsemotion(224, HSEMOTION_8, va=False),
    "hsemotion-enet_b0_8_best_vgaf": _hsemotion(224, HSEMOTION_8, va=False),
    "hsemotion-enet_b2_8": _hsemotion(260, HSEMOTION_8, va=False),
    "hsemotion-enet_b2_7": _hsemotion(260, HSEMOTION_7, va=False),
    "emonet-8": _emonet(EMONET_8),
    "emonet-5": _emonet(EMONET_5),
}
ROLES = {"logits": "expression_logits", "expression_logits": "expression_logits", "valence": "valence",
         "arousal": "arousal", "embedding": "embedding"}
OUTPUTS_HELP = ("ROLE:OUTPUT[start:stop] items, comma-separated; roles: logits, valence, arousal, embedding; "
                "[i] takes one column, [i:j] columns i..j-1 of the output's last axis, none: all of it")


def parse_outputs(text: str) -> dict:
    """'logits:out[0:8],valence:out[8],arousal:out[9]' -> {role: (output, start, stop or None)}."""
    return parse_output_items(text, ROLES, ImportModelError, OUTPUTS_HELP)


def _declared(session):
    dims = lambda shape: [d if isinstance(d, int) and d > 0 else None for d in shape]  # noqa: E731
    ins = [(a.name, dims(a.shape), ONNX_DTYPES.get(a.type, a.type)) for a in session.get_inputs()]
    outs = [(a.name, dims(a.shape), ONNX_DTYPES.get(a.type, a.type)) for a in session.get_outputs()]
    return ins, outs


def _card_shape(shape):
    return ["batch" if i == 0 and d is None else (f"dim{i}" if d is None else d) for i, d in enumerate(shape)]


def import_face_model(onnx_path, out=None, preset: str | None = None, name: str | None = None,
                      input_name: str | None = None, input_size: int | None = None, channel_order: str | None = None,
                      mean=None, std=None, crop_margin: float | None = None, outputs: str | None = None,
                      classes=None, terms: str | None = None) -> ModelCard:
    """Check `onnx_path` against the preset (or the generic arguments) and write its card to `out`
    (default: beside the ONNX, <stem>.json); arguments given with a preset override it (recorded).
    Returns the card as the face node will read it. ImportModelError / ModelFileError in one line."""
    import onnxruntime as ort

    onnx_path = pathlib.Path(onnx_path)
    if not onnx_path.is_file():
        raise ModelFileError(f"ONNX file '{onnx_path}' does not exist; download or export it first "
                             "(docs/face_models.md says where each model comes from)")
    if preset is not None and preset not in PRESETS:
        raise ImportModelError(f"--preset '{preset}' unknown; allowed: {', '.join(PRESETS)} (or none: the generic "
                               "form with --input-size, --mean, --std, --channel-order, --outputs, --classes)")
    p = PRESETS.get(preset)
    try:
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    except Exception as err:   # onnxruntime raises its own Fail/InvalidGraph types
        raise ModelFileError(f"ONNX Runtime cannot load '{onnx_path}': {err}") from err
    ins, outs = _declared(session)
    what = f"'{onnx_path}'" + (f" (preset {preset})" if preset else "")

    # ---- the image input
    want_input = input_name or (p.input if p else FIRST)
    if want_input == FIRST:
        if len(ins) != 1:
            raise ImportModelError(f"{what} has inputs {[i[0] for i in ins]}; name the image input with --input")
        want_input = ins[0][0]
    found = next((i for i in ins if i[0] == want_input), None)
    if found is None or len(ins) != 1:
        raise ImportModelError(f"{what} has inputs {[i[0] for i in ins]}; expected one image input "
                               f"'{want_input}' (N, C, S, S)")
    _, in_shape, in_dtype = found
    channels = channel_order or (p.channels if p else None)
    size = input_size or (p.size if p else None)
    if channels not in CHANNELS:
        raise ImportModelError(f"--channel-order is {channels!r}; allowed: {', '.join(CHANNELS)}")
    if size is None and len(in_shape) == 4 and in_shape[2] == in_shape[3] and in_shape[2]:
        size = in_shape[2]        # the generic form may leave it to the model
    c = CHANNELS[channels]
    if in_dtype != "float32" or len(in_shape) != 4 or in_shape[1:] != [c, size, size]:
        shown = ['?' if d is None else d for d in in_shape]
        raise ImportModelError(f"{what}: input '{want_input}' is {in_dtype} {shown}"
                               f"; expected float32 [N, {c}, {size}, {size}] ({channels} crops of {size}x{size})")
    mean = tuple(float(v) for v in (mean if mean is not None else (p.mean if p else ())))
    std = tuple(float(v) for v in (std if std is not None else (p.std if p else ())))
    if len(mean) != c or len(std) != c or min(std, default=0) <= 0:
        raise ImportModelError(f"--mean {list(mean)} and --std {list(std)}: give {c} values each (std > 0), applied "
                               "to pixels / 255")
    margin = crop_margin if crop_margin is not None else (p.crop_margin if p else 0.0)

    # ---- the outputs
    roles = dict(p.outputs) if p else {}
    if outputs:
        roles.update(parse_outputs(outputs))
    if not roles:
        raise ImportModelError(f"{what}: no outputs named; give --outputs ({OUTPUTS_HELP}) or a --preset")
    by_name = {o[0]: o for o in outs}
    if p:
        for oname, width in p.widths.items():
            key = oname or (outs[0][0] if len(outs) == 1 else None)
            have = by_name.get(key)
            if have is None:
                raise ImportModelError(f"{what}: outputs are {[o[0] for o in outs]}; the preset expects "
                                       f"{'one output' if oname == FIRST else repr(oname)}")
            if not have[1] or have[1][-1] not in (width, None):
                raise ImportModelError(f"{what}: output '{key}' has shape {have[1]}; the preset expects its last "
                                       f"axis to be {width}")
    face = {"input": want_input, "size": size, "channels": channels, "mean": list(mean), "std": list(std),
            "crop_margin": float(margin)}
    for role, (oname, start, stop) in roles.items():
        if oname == FIRST:
            if len(outs) != 1:
                raise ImportModelError(f"{what}: outputs are {[o[0] for o in outs]}; name the {role} output in "
                                       "--outputs")
            oname = outs[0][0]
        if oname not in by_name:
            raise ImportModelError(f"{what}: --outputs names '{oname}' for {role}; the model's outputs are "
                                   f"{[o[0] for o in outs]}")
        face[role] = {"output": oname, "start": int(start), "stop": None if stop is None else int(stop)}
    labels = tuple(classes) if classes else (p.labels if p else ())
    face["expression_labels"] = list(labels)
    face["source"] = f"emo_import_model --preset {preset}" if preset else "emo_import_model (generic form)"
    face["terms"] = terms or (p.terms if p else "")

    # ---- one run on a blank batch: the outputs' real sizes (declared sizes are often left open)
    batch = 1 if in_shape[0] == 1 else 2
    ran = session.run(None, {want_input: np.zeros((batch, c, size, size), np.float32)})
    actual = {o[0]: list(np.shape(r)) for o, r in zip(outs, ran)}
    for role in ("expression_logits", "valence", "arousal", "embedding"):
        spec = face.get(role)
        if spec is None:
            continue
        shape = actual[spec["output"]]
        if not shape or shape[0] != batch:
            raise ImportModelError(f"{what}: output '{spec['output']}' ({role}) has shape {shape} for a batch of "
                                   f"{batch}; expected the batch first")
        width = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        spec["stop"] = width if spec["stop"] is None else spec["stop"]
        if not 0 <= spec["start"] < spec["stop"] <= width:
            raise ImportModelError(f"{what}: {role} takes columns {spec['start']}..{spec['stop'] - 1} of output "
                                   f"'{spec['output']}', which has {width}")
    for role in ("expression_logits", "valence", "arousal", "embedding"):
        face.setdefault(role, None)

    # ---- the card, next to what it describes
    out = pathlib.Path(out) if out else onnx_path.with_suffix(".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    name = name or onnx_path.stem
    digest = sha256(onnx_path)

    def io(declared, run_shapes=None):
        specs = []
        for n, shape, dtype in declared:
            fixed = list(shape)
            if run_shapes is not None and len(run_shapes[n]) == len(shape):   # fix open non-batch axes as run
                fixed = [d if d is not None or i == 0 else run_shapes[n][i] for i, d in enumerate(shape)]
            specs.append({"name": n, "shape": _card_shape(fixed), "dtype": dtype})
        return specs

    card = ModelCard(name=name, kind=IMPORTED_KIND, model_id=f"{name}@{digest[:12]}", inputs=io(ins),
                     outputs=io(outs, actual), onnx=os.path.relpath(onnx_path.resolve(), out.parent.resolve()),
                     onnx_sha256=digest, opset=_opset(onnx_path),
                     normalisation=(f"face crop {size}x{size} {channels}, (x/255 - mean) / std, mean {list(mean)}, "
                                    f"std {list(std)}, box margin {margin:g} (core/face_model_io.py)"),
                     face=face, format=CARD_FORMAT)
    card.path = str(out.resolve())
    try:
        face_model_io(card)        # what the face pipeline will read: refused here, not at the robot
    except ValueError as err:
        raise ImportModelError(str(err)) from err
    card.save(out)
    return card


def _opset(onnx_path) -> int:
    try:
        import onnx

        model = onnx.load(str(onnx_path), load_external_data=False)
        return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    except (ImportError, OSError, ValueError):
        return 0
