"""What a face model takes and gives, read from its model card: the one definition of the card's
`face` block (written by `emo_import_model`, inference/import_model.py) and its reading.

A card without a `face` block is one of ours (expression_teacher, face_encoder): input `face`,
(batch, 1, S, S) grey crops made by core/face_crop.crop_faces; outputs `embedding`,
`expression_logits` (FER2013 order, core/circumplex.EXPRESSION_LABELS) and, for a student,
`valence_arousal`. A card of our own may carry a `face` block with `expression_labels` alone (a
student distilled from a teacher of other classes).

The `face` block of an imported model (every key written by the import tool):

    input            name of the model's image input, (batch, C, S, S) float32 (NCHW)
    size             S, the square crop side in pixels
    channels         "rgb" | "bgr" | "grey" (C = 3, 3, 1)
    mean, std        per channel, applied to pixels / 255: (x / 255 - mean) / std
    crop_margin      share of the detector's box added on each side before the square crop
    expression_logits, valence, arousal, embedding
                     each null or {"output": NAME, "start": i, "stop": j}: columns [i, j) of that
                     output's last axis (a (batch,) output is one column); valence/arousal one column
    expression_labels  the class names of the expression columns, in order
    source, terms    where the weights come from and under which terms (shown, not interpreted)

Valence/arousal come from the model where it gives them; from its expression probabilities through
the circumplex (core/circumplex.py) only where it gives categories alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .circumplex import EXPRESSION_LABELS, circumplex_points, expression_to_valence_arousal, softmax
from .face_crop import CROP_MARGIN, crop_faces, crop_patches

NATIVE_INPUT = "face"      # our own face models' input: (batch, 1, S, S) grey crops in [-1, 1]
CHANNELS = {"rgb": 3, "bgr": 3, "grey": 1}
HEADS = ("expression_logits", "valence", "arousal", "embedding")


@dataclass(frozen=True)
class Head:
    """Columns [start, stop) of one model output's last axis."""
    output: str
    start: int
    stop: int

    def take(self, outputs: dict, n: int) -> np.ndarray:
        return np.asarray(outputs[self.output], np.float32).reshape(n, -1)[:, self.start:self.stop]


@dataclass(frozen=True)
class FaceModelIO:
    input: str
    size: int
    channels: str
    mean: tuple
    std: tuple
    crop_margin: float
    expression_labels: tuple
    expression: Head | None
    valence: Head | None
    arousal: Head | None
    embedding: Head | None
    native: bool                 # crops exactly as core/face_crop.crop_faces makes them (x/127.5 - 1)

    @property
    def gives_valence_arousal(self) -> bool:
        return self.valence is not None and self.arousal is not None

    def crops(self, rgb: np.ndarray, boxes, rolls=None, margin: float | None = None) -> np.ndarray:
        """(H, W, 3) uint8 RGB + boxes -> the model's input batch (N, C, S, S) float32."""
        margin = self.crop_margin if margin is None else margin
        if self.native:
            return crop_faces(rgb, boxes, self.size, margin=margin, rolls=rolls)
        patches = crop_patches(rgb, boxes, self.size, margin, rolls, grey=self.channels == "grey")
        x = patches.astype(np.float32).reshape(len(boxes), self.size, self.size, -1)
        if self.channels == "bgr":
            x = x[..., ::-1]
        x = (x / 255.0 - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float32)

    def read(self, outputs: dict, n: int):
        """Model outputs for n faces -> embeddings (N, E; E = 0 without one), expression
        probabilities (N, K; K = 0 without), valence/arousal (N, 2) in [-1, 1]."""
        emb = self.embedding.take(outputs, n) if self.embedding else np.zeros((n, 0), np.float32)
        probs = (softmax(self.expression.take(outputs, n).astype(np.float64)).astype(np.float32)
                 if self.expression else np.zeros((n, 0), np.float32))
        if self.gives_valence_arousal:
            va = np.concatenate([self.valence.take(outputs, n), self.arousal.take(outputs, n)], axis=1)
        else:
            va = expression_to_valence_arousal(probs, circumplex_points(self.expression_labels))
        return emb, probs, np.clip(va, -1.0, 1.0).astype(np.float32)


def _spec(specs, name):
    return next((t for t in specs if t["name"] == name), None)


def _native(card, face: dict) -> FaceModelIO:
    spec = _spec(card.inputs, NATIVE_INPUT)
    shape = list(spec["shape"]) if spec else []
    if len(shape) != 4 or shape[1] != 1 or not isinstance(shape[2], int) or shape[2] != shape[3] or shape[2] < 8:
        raise ValueError(f"face model card '{card.path}': input '{NATIVE_INPUT}' is {spec and spec['shape']}; "
                         "expected (batch, 1, S, S): square grey crops of a fixed size S >= 8 (core/face_crop.py)")
    names = [t["name"] for t in card.outputs]
    if "embedding" not in names or "expression_logits" not in names:
        raise ValueError(f"face model '{card.path}' outputs {names}; expected 'embedding' and 'expression_logits' "
                         "(an expression_teacher or face_encoder), or a card made by emo_import_model")
    k = _width(card, "expression_logits")
    labels = tuple(face.get("expression_labels") or EXPRESSION_LABELS)
    if len(labels) != k:
        raise ValueError(f"face model card '{card.path}': {len(labels)} expression_labels for {k} expression logits")
    va = "valence_arousal" in names
    model = FaceModelIO(NATIVE_INPUT, shape[2], "grey", (0.5,), (0.5,), CROP_MARGIN, labels,
                        Head("expression_logits", 0, k), Head("valence_arousal", 0, 1) if va else None,
                        Head("valence_arousal", 1, 2) if va else None, Head("embedding", 0, _width(card, "embedding")),
                        native=True)
    if not va:
        circumplex_points(labels)    # ValueError naming a class without a circumplex point
    return model


def _width(card, output: str) -> int | None:
    shape = list(_spec(card.outputs, output)["shape"])
    if len(shape) <= 1:
        return 1
    return shape[-1] if isinstance(shape[-1], int) else None


def face_model_io(card) -> FaceModelIO:
    """The card's word on the face model's input and outputs (checked against the model by the
    backend at load); ValueError naming the card and the key for anything the face pipeline cannot use."""
    face = dict(getattr(card, "face", None) or {})
    if "input" not in face:
        return _native(card, face)
    where = f"face model card '{card.path}'"
    spec = _spec(card.inputs, face["input"])
    if spec is None:
        raise ValueError(f"{where}: face.input '{face['input']}' is not among the card's inputs "
                         f"{[t['name'] for t in card.inputs]}")
    channels = face.get("channels")
    if channels not in CHANNELS:
        raise ValueError(f"{where}: face.channels is {channels!r}; allowed: {', '.join(CHANNELS)}")
    size, c = face.get("size"), CHANNELS[channels]
    if not isinstance(size, int) or size < 8 or list(spec["shape"])[1:] != [c, size, size]:
        raise ValueError(f"{where}: input '{face['input']}' is {spec['shape']}; face.size {size!r} and face.channels "
                         f"'{channels}' need (batch, {c}, {size}, {size})")
    mean, std = tuple(face.get("mean", ())), tuple(face.get("std", ()))
    if len(mean) != c or len(std) != c or min(std) <= 0:
        raise ValueError(f"{where}: face.mean {list(mean)} and face.std {list(std)} need {c} values each, std > 0")
    margin = face.get("crop_margin", CROP_MARGIN)
    if not 0.0 <= float(margin) <= 1.0:
        raise ValueError(f"{where}: face.crop_margin is {margin}; allowed: 0..1")
    heads = {}
    for key in HEADS:
        h = face.get(key)
        if h is None:
            heads[key] = None
            continue
        out = _spec(card.outputs, h.get("output"))
        if out is None:
            raise ValueError(f"{where}: face.{key} names output {h.get('output')!r}; the card's outputs are "
                             f"{[t['name'] for t in card.outputs]}")
        width = _width(card, out["name"])
        start, stop = int(h.get("start", 0)), h.get("stop")
        stop = int(stop) if stop is not None else width
        if stop is None or not 0 <= start < stop or (width is not None and stop > width):
            raise ValueError(f"{where}: face.{key} takes columns {start}..{stop} of output '{out['name']}' "
                             f"(last axis {width}); allowed: 0 <= start < stop <= {width}")
        if key in ("valence", "arousal") and stop - start != 1:
            raise ValueError(f"{where}: face.{key} takes {stop - start} columns; allowed: one")
        heads[key] = Head(out["name"], start, stop)
    labels = tuple(face.get("expression_labels") or ())
    expr = heads["expression_logits"]
    if expr is not None and len(labels) != expr.stop - expr.start:
        raise ValueError(f"{where}: {len(labels)} expression_labels for {expr.stop - expr.start} expression columns")
    model = FaceModelIO(face["input"], size, channels, mean, std, float(margin), labels, expr, heads["valence"],
                        heads["arousal"], heads["embedding"], native=False)
    if (heads["valence"] is None) != (heads["arousal"] is None):
        raise ValueError(f"{where}: face.valence and face.arousal come together (both or neither)")
    if not model.gives_valence_arousal:
        if expr is None:
            raise ValueError(f"{where}: neither valence/arousal nor expression_logits: nothing to estimate affect from")
        circumplex_points(labels)
    return model
