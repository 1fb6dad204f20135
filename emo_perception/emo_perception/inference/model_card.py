"""Model cards: the JSON written beside every exported ONNX file, read by every backend."""
from __future__ import annotations

import hashlib
import json
import pathlib
import re
from dataclasses import asdict, dataclass, field

CARD_FORMAT = "emo_perception.model_card/1"


class ModelFileError(RuntimeError):
    """A model, card or engine file is missing, corrupt or does not match; the text says what to do."""


class ModelRunError(RuntimeError):
    """A loaded model failed on one input (the backend's own error, e.g. a GPU fault): callers that run
    per message drop that message and say so, instead of letting it out of the callback."""


@dataclass
class ModelCard:
    name: str
    kind: str
    model_id: str
    inputs: list          # [{"name", "shape" (ints, or "batch"/"time" for dynamic axes), "dtype"}]
    outputs: list
    onnx: str
    onnx_sha256: str
    checkpoint: str = ""
    checkpoint_sha256: str = ""
    opset: int = 17
    normalisation: str = ""
    model_args: dict = field(default_factory=dict)
    parity_max_abs_diff: float = float("nan")
    audio: dict = field(default_factory=dict)   # a voice model card's `audio` block (core/voice_model.py)
    # face models: crops, heads and class names (the keys: core/face_model_io.py; written by
    # emo_import_model for imported models; {} = our own contract)
    face: dict = field(default_factory=dict)
    format: str = CARD_FORMAT
    path: str = ""        # where the card was read from (not written)

    def file(self, relative: str) -> pathlib.Path:
        return pathlib.Path(self.path).parent / relative

    @property
    def onnx_path(self) -> pathlib.Path:
        return self.file(self.onnx)

    @property
    def checkpoint_path(self) -> pathlib.Path:
        return self.file(self.checkpoint)

    def input_names(self):
        return [t["name"] for t in self.inputs]

    def output_names(self):
        return [t["name"] for t in self.outputs]

    def save(self, path):
        data = {k: v for k, v in asdict(self).items() if k != "path"}
        pathlib.Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


# ONNX element types (onnxruntime's NodeArg.type) -> the card's dtype names.
ONNX_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
               "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int8)": "int8", "tensor(uint8)": "uint8",
               "tensor(bool)": "bool"}


def check_model_io(card: ModelCard, inputs, outputs, model: str, ordered_outputs: bool = True):
    """The card describes the model it names, or ModelFileError in one line.

    `inputs`/`outputs`: [(name, shape, dtype)] as the model itself declares them (ONNX graph, engine,
    checkpoint); a dynamic axis is None, a name or -1. Input names (in order), output names (in order
    where the backend returns outputs by position), every tensor's rank, fixed sizes and dtype must
    agree. A card may fix a size the model leaves dynamic (it narrows it); a card may not call an axis
    dynamic where the model fixes it, nor give another size: inputs made to the card's word would
    fail at run time, or worse, be resized to fit."""
    problem = _io_problem("input", card.inputs, inputs, True) or _io_problem("output", card.outputs, outputs,
                                                                             ordered_outputs)
    if problem:
        raise ModelFileError(f"model card '{card.path}' does not describe '{model}': {problem}; "
                             "correct the card or re-export the model with `emo_export`")


def _dynamic(d) -> bool:
    return d is None or isinstance(d, str) or d == -1


def _io_problem(role: str, card_specs, actual, ordered: bool) -> str | None:
    want = [s["name"] for s in card_specs]
    have = [name for name, _, _ in actual]
    if (want != have) if ordered else (sorted(want) != sorted(have)):
        return f"{role}s are {have} in the model, {want} in the card"
    by_name = {name: (list(shape), dtype) for name, shape, dtype in actual}
    for spec in card_specs:
        name, shape = spec["name"], list(spec["shape"])
        model_shape, model_dtype = by_name[name]
        if spec.get("dtype") != model_dtype:
            return f"{role} '{name}' is {model_dtype} in the model, {spec.get('dtype')} in the card"
        same = len(shape) == len(model_shape) and all(
            _dynamic(m) or (not _dynamic(c) and c == m) for c, m in zip(shape, model_shape))
        if not same:
            shown = ["?" if d is None or d == -1 else d for d in model_shape]
            return f"{role} '{name}' has shape {shown} in the model, {shape} in the card"
    return None


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_card(path) -> ModelCard:
    path = pathlib.Path(path)
    if path.suffix == ".onnx":
        path = path.with_suffix(".json")
    if not path.is_file():
        raise ModelFileError(f"model card '{path}' does not exist; export the model with `emo_export` "
                             "or point the model parameter at an existing <model>.json")
    try:
        data = json.loads(path.read_text())
        if data.get("format") != CARD_FORMAT:
            raise ValueError(f"format is '{data.get('format')}', expected '{CARD_FORMAT}'")
        card = ModelCard(**data)
    except (ValueError, TypeError) as err:
        raise ModelFileError(f"model card '{path}' is not a valid {CARD_FORMAT} file ({err}); "
                             "re-export the model with `emo_export`") from err
    card.path = str(path.resolve())
    return card


def verify_onnx_file(card: ModelCard) -> pathlib.Path:
    """The ONNX file exists and is the one the card was written for."""
    onnx_path = card.onnx_path
    if not onnx_path.is_file():
        raise ModelFileError(f"ONNX file '{onnx_path}' named by card '{card.path}' does not exist; "
                             "re-export with `emo_export`")
    if sha256(onnx_path) != card.onnx_sha256:
        raise ModelFileError(f"ONNX file '{onnx_path}' does not match its model card '{card.path}' "
                             "(sha256 differs): the file was replaced or corrupted; re-export both with `emo_export`")
    return onnx_path


_OUTPUT_ITEM = re.compile(r"^(\w+):([^\[\]]+?)(?:\[(\d+)(?::(\d+))?\])?$")


def parse_output_items(text: str, roles: dict, error: type, expected: str) -> dict:
    """'role:output[start:stop],...' (the import tools' --outputs) -> {roles[role]: (output, start, stop or
    None)}: [i] one column, [i:j] columns i..j-1 of the output's last axis, none all of it. An item that is
    not understood, or names a role not in `roles`, raises `error` naming it and `expected`."""
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        m = _OUTPUT_ITEM.match(item)
        if not m or m.group(1) not in roles:
            raise error(f"--outputs item '{item}' is not understood; expected {expected}")
        start = int(m.group(3)) if m.group(3) is not None else 0
        stop = int(m.group(4)) if m.group(4) is not None else (start + 1 if m.group(3) is not None else None)
        out[roles[m.group(1)]] = (m.group(2).strip(), start, stop)
    return out
