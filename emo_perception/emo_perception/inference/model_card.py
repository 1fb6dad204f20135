"""Model cards: the JSON written beside every exported ONNX file, read by every backend."""
from __future__ import annotations

import hashlib
import json
import pathlib
from dataclasses import asdict, dataclass, field

CARD_FORMAT = "emo_perception.model_card/1"


class ModelFileError(RuntimeError):
    """A model, card or engine file is missing, corrupt or does not match; the text says what to do."""


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
