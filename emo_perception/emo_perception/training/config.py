"""emo_train's configuration: one dataclass (the one source of defaults), a YAML file with a
`common:` block and one block per stage, and `--set key=value` overrides on the command line."""
from __future__ import annotations

import dataclasses
import difflib
import pathlib
from dataclasses import dataclass, field

import yaml

from ..runtime.params import ConfigError
from .sessions import FORMATS

STAGES = ("face", "audio", "fusion")
VA_LOSSES = ("ccc", "mse")
DEVICES = ("auto", "cpu", "cuda")
_DATA_FORM = "{root: <folder>, format: " + "|".join(FORMATS) + "}"


@dataclass
class TrainConfig:
    # data: [{root, format (lab|recola|affectnet)}]; held-out split: the data set's own, or val_fraction (lab)
    data: list = field(default_factory=list)
    val_fraction: float = 0.25
    out_dir: str = "runs/{stage}"          # checkpoint, metrics.csv, summary.json, export/
    cache_dir: str = "runs/cache"          # feature cache (face crops only for the face stage)
    name: str = ""                         # exported file stem ('' = face_encoder | audio_encoder | fusion_gru)
    seed: int = 0
    epochs: int = 10
    batch_size: int = 32                   # global: split over torchrun's processes
    lr: float = 1e-3
    weight_decay: float = 1e-4
    grad_clip: float = 1.0
    checkpoint_every: int = 50             # steps (and at every epoch's end)
    max_steps: int = 0                     # 0 = epochs decide
    device: str = "auto"
    threads: int = 0                       # torch CPU threads (0 = torch's default)
    annotation_delay: float = 0.0          # s the raters lag the signal (RECOLA: seconds; AVEC baselines shift by that order)
    # models the features come from (model cards; '' = the shipped teacher)
    teacher_model: str = ""
    face_model: str = ""
    audio_model: str = "logmel_stats"
    detector: str = "blazeface"
    detector_max_width: int = 576
    face_fps: float = 15.0                 # frames per second processed, as the face node's processing_rate
    # face stage
    backbone: str = "face_encoder"         # or torchvision:<arch> (e.g. torchvision:resnet18)
    backbone_weights: str = ""             # torchvision: a state_dict file the user gives (nothing downloads)
    embedding_dim: int = 256
    temperature: float = 4.0
    kd_weight: float = 1.0
    va_weight: float = 1.0
    expression_weight: float = 0.5         # cross-entropy where a hard expression label exists (AffectNet)
    va_loss: str = "ccc"
    train_fps: float = 5.0                 # face crops per second of video used for training
    augment: bool = True
    # fusion stage
    chunk_s: float = 8.0
    chunk_hop_s: float = 4.0
    modality_dropout: float = 0.25         # per chunk: P(face removed), the same P(voice removed)
    hidden_dim: int = 128
    projection_dim: int = 128
    num_layers: int = 2
    dropout: float = 0.1
    runtime_baselines: bool = True         # also score the export and `prior` through the fusion node's pipeline

    def check(self, stage: str):
        if stage not in STAGES:
            raise ConfigError(f"stage '{stage}' unknown; allowed: {', '.join(STAGES)}")
        if not self.data:
            raise ConfigError(f"parameter 'data' is empty; give at least one {_DATA_FORM} (YAML) or "
                              "--data <format>:<folder>")
        for d in self.data:
            if not isinstance(d, dict) or d.get("format") not in FORMATS or not d.get("root"):
                raise ConfigError(f"parameter 'data' has {d!r}; allowed: {_DATA_FORM}")
        if self.va_loss not in VA_LOSSES:
            raise ConfigError(f"parameter 'va_loss' is '{self.va_loss}'; allowed: {', '.join(VA_LOSSES)}")
        if self.device not in DEVICES:
            raise ConfigError(f"parameter 'device' is '{self.device}'; allowed: {', '.join(DEVICES)}")
        for name, lo, hi in (("val_fraction", 0.0, 0.9), ("modality_dropout", 0.0, 0.5), ("lr", 1e-8, 10.0),
                             ("temperature", 0.1, 100.0), ("chunk_s", 0.4, 600.0), ("annotation_delay", 0.0, 10.0)):
            v = getattr(self, name)
            if not lo <= v <= hi:
                raise ConfigError(f"parameter '{name}' is {v}; allowed: {lo}..{hi}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"parameter '{name}' is {getattr(self, name)}; allowed: >= 1")
        if not (self.backbone == "face_encoder" or self.backbone.startswith("torchvision:")):
            raise ConfigError(f"parameter 'backbone' is '{self.backbone}'; allowed: face_encoder or torchvision:<arch>")

    def run_dir(self, stage: str) -> pathlib.Path:
        return pathlib.Path(self.out_dir.format(stage=stage)).expanduser()


def _coerce(name: str, text: str, default):
    value = yaml.safe_load(text) if isinstance(text, str) else text
    if isinstance(default, bool) and not isinstance(value, bool):
        raise ConfigError(f"parameter '{name}' is {text!r}; allowed: true or false")
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(default, str) and not isinstance(value, str):
        value = "" if value is None else str(value)
    if type(value) is not type(default):
        raise ConfigError(f"parameter '{name}' is {text!r}; allowed: a {type(default).__name__}")
    return value


def _apply(cfg: TrainConfig, values: dict, origin: str):
    known = {f.name: f for f in dataclasses.fields(cfg)}
    for name, value in (values or {}).items():
        if name not in known:
            close = difflib.get_close_matches(name, known, 1)
            raise ConfigError(f"parameter '{name}' ({origin}) is unknown" + (f"; did you mean '{close[0]}'?" if close else ""))
        setattr(cfg, name, _coerce(name, value, getattr(cfg, name)))


def load(stage: str, path=None, overrides=(), data=()) -> TrainConfig:
    """Defaults <- the file's `common:` <- its `<stage>:` block <- --set key=value <- --data format:root."""
    cfg = TrainConfig()
    if path:
        path = pathlib.Path(path)
        if not path.is_file():
            raise ConfigError(f"config file '{path}' does not exist")
        doc = yaml.safe_load(path.read_text()) or {}
        if not isinstance(doc, dict) or set(doc) - {"common", *STAGES}:
            raise ConfigError(f"config file '{path}': top-level keys {sorted(doc) if isinstance(doc, dict) else doc}; "
                              f"allowed: common, {', '.join(STAGES)}")
        _apply(cfg, doc.get("common"), f"{path}: common")
        _apply(cfg, doc.get(stage), f"{path}: {stage}")
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set '{item}': expected key=value")
        k, v = item.split("=", 1)
        _apply(cfg, {k.strip(): v}, "--set")
    for item in data:
        fmt, _, root = item.partition(":")
        cfg.data = list(cfg.data) + [{"format": fmt, "root": root}]
    cfg.check(stage)
    return cfg
