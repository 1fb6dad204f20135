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
GENERATE = "generate"                      # emo_train generate: its own settings (GenerateConfig)
VA_LOSSES = ("ccc", "mse")
DEVICES = ("auto", "cpu", "cuda")
EXTRACT_BACKENDS = ("onnxruntime", "torch")
FACE_FEATURES = ("embedding", "blendshapes")   # the fusion GRU's face input (fusion_stage.py)
_DATA_FORM = "{root: <folder>, format: " + "|".join(FORMATS) + "}"
FACE_STAGES = ("face", "fusion")           # the stages that run the face pipeline over videos


ALIASES = {"teacher": "teacher_model"}     # other spellings of a setting (emo_train face --set teacher=<card>)


def setting(default, help: str, stages=STAGES):
    """A dataclass field with its description and the stages it has an effect on (what --help lists
    and what a stage accepts in --set and its YAML block)."""
    meta = {"help": help, "stages": tuple(stages)}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    # data and where things go
    data: list = setting([], f"data sets, [{_DATA_FORM}] in YAML or --data FORMAT:ROOT; the held-out split is "
                             "each data set's own (lab: splits.csv, else val_fraction)")
    val_fraction: float = setting(0.25, "lab data sets without splits.csv: the share of sessions held out (val) "
                                        "by a fixed hash of the session name")
    out_dir: str = setting("runs/{stage}", "checkpoint.pt, metrics.csv, summary.json, export/ ({stage}: the stage)")
    cache_dir: str = setting("runs/cache", "feature cache (face crops only for the face stage)")
    name: str = setting("", "exported file stem ('' = face_encoder | audio_encoder | fusion_gru)")
    seed: int = setting(0, "seed of weights, batch order, augmentation and dropout")
    epochs: int = setting(10, "passes over the training split")
    batch_size: int = setting(32, "global batch: split over torchrun's processes")
    lr: float = setting(1e-3, "AdamW learning rate")
    weight_decay: float = setting(1e-4, "AdamW weight decay")
    grad_clip: float = setting(1.0, "gradient norm clip (0 = none)")
    checkpoint_every: int = setting(50, "steps between checkpoints (and at every epoch's end)")
    eval_every_epochs: int = setting(1, "epochs between evaluations of the held-out split in metrics.csv (the last "
                                        "epoch's and the final step's always)")
    max_steps: int = setting(0, "stop after this many steps (0 = epochs decide)")
    device: str = setting("auto", "auto (cuda when torch sees one) | cpu | cuda")
    threads: int = setting(0, "torch CPU threads (0 = torch's default)")
    annotation_delay: float = setting(0.0, "s the raters lag the signal: the label at t + d is paired with the "
                                           "input at t (RECOLA: seconds)")
    # models the features come from (model cards; '' = the shipped teacher)
    teacher_model: str = setting("", "the teacher's model card ('' = the shipped expression teacher; any face model "
                                     "card, e.g. one made by emo_import_model; also spelt teacher=): distillation "
                                     "(face: its expression probabilities, and its valence/arousal where it has "
                                     "them), the prior baseline (fusion)", FACE_STAGES)
    face_model: str = setting("", "model card of the face embeddings the GRU is trained on ('' = the teacher)",
                              ("fusion",))
    face_feature: str = setting("embedding", "what of each face the GRU is trained on: embedding (face_model's) | "
                                             "blendshapes (MediaPipe's 52, the face node's face_landmarks)",
                                ("fusion",))
    audio_model: str = setting("logmel_stats", "audio embeddings the GRU is trained on: logmel_stats | egemaps | "
                                               "an audio encoder's model card", ("fusion",))
    detector: str = setting("blazeface", "face detector, as the face node's", FACE_STAGES)
    detector_max_width: int = setting(576, "frames wider than this are downscaled for detection, as the face "
                                           "node's", FACE_STAGES)
    face_fps: float = setting(15.0, "frames per second processed, as the face node's processing_rate", FACE_STAGES)
    # feature extraction (training/features.py, shared out over torchrun's ranks: training/extract.py)
    extract_device: str = setting("auto", "where the extraction's models run: auto (the training device where the "
                                          "backend can run there, else cpu, said in summary.json) | cpu | cuda",
                                  FACE_STAGES)
    extract_backend: str = setting("onnxruntime", "the extraction's face and audio models: onnxruntime (CUDA with "
                                                  "onnxruntime-gpu) | torch (their checkpoints; the detector stays "
                                                  "on onnxruntime)", FACE_STAGES)
    extract_batch: int = setting(64, "face crops (of consecutive frames) per face-model call while extracting "
                                     "(1: each frame's own call, as the node); audio windows alike", FACE_STAGES)
    # face stage
    backbone: str = setting("face_encoder", "the student: face_encoder or torchvision:<arch> (e.g. "
                                            "torchvision:resnet18)", ("face",))
    backbone_weights: str = setting("", "torchvision backbones: a state_dict file you give (nothing downloads)",
                                    ("face",))
    embedding_dim: int = setting(256, "the student's embedding size", ("face",))
    temperature: float = setting(4.0, "distillation temperature of the teacher's soft labels", ("face",))
    kd_weight: float = setting(1.0, "weight of the distillation loss", ("face",))
    va_weight: float = setting(1.0, "weight of the valence/arousal loss", ("face",))
    expression_weight: float = setting(0.5, "cross-entropy weight where a hard expression label exists (AffectNet)",
                                       ("face",))
    va_loss: str = setting("ccc", "valence/arousal loss: ccc | mse", ("face",))
    train_fps: float = setting(5.0, "face crops per second of video used for training", ("face",))
    augment: bool = setting(True, "augmentation (face: flips, shifts, contrast; audio: gain, SpecAugment)",
                            ("face", "audio"))
    # fusion stage
    chunk_s: float = setting(8.0, "training chunks of this many seconds", ("fusion",))
    audio_delay: float = setting(0.0, "each step is trained with the audio of this long (s) before it, as the fusion "
                                      "node's audio_delay fuses it (the card records it; the node must match)",
                                 ("fusion",))
    chunk_hop_s: float = setting(4.0, "s between the starts of training chunks", ("fusion",))
    modality_dropout: float = setting(0.25, "per chunk: P(face removed), the same P(voice removed)", ("fusion",))
    hidden_dim: int = setting(128, "GRU hidden size", ("fusion",))
    projection_dim: int = setting(128, "size of each modality's projection before the GRU", ("fusion",))
    num_layers: int = setting(2, "GRU layers", ("fusion",))
    dropout: float = setting(0.1, "dropout between the GRU layers", ("fusion",))
    runtime_baselines: bool = setting(True, "also score the export and `prior` through the fusion node's pipeline",
                                      ("fusion",))

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
        if self.extract_device not in DEVICES:
            raise ConfigError(f"parameter 'extract_device' is '{self.extract_device}'; allowed: {', '.join(DEVICES)}")
        if self.extract_backend not in EXTRACT_BACKENDS:
            raise ConfigError(f"parameter 'extract_backend' is '{self.extract_backend}'; allowed: "
                              f"{', '.join(EXTRACT_BACKENDS)}")
        if self.face_feature not in FACE_FEATURES:
            raise ConfigError(f"parameter 'face_feature' is '{self.face_feature}'; allowed: {', '.join(FACE_FEATURES)}")
        if stage == "fusion" and self.face_feature == "blendshapes" and self.face_model:
            raise ConfigError(f"parameter 'face_model' is '{self.face_model}', but with face_feature 'blendshapes' the "
                              "GRU sees no face model's embedding; allowed: '' (or face_feature 'embedding')")
        if not 1 <= self.extract_batch <= 4096:
            raise ConfigError(f"parameter 'extract_batch' is {self.extract_batch}; allowed: 1..4096")
        for name, lo, hi in (("val_fraction", 0.0, 0.9), ("modality_dropout", 0.0, 0.5), ("lr", 1e-8, 10.0),
                             ("temperature", 0.1, 100.0), ("chunk_s", 0.4, 600.0), ("annotation_delay", 0.0, 10.0),
                             ("audio_delay", 0.0, 0.5)):
            v = getattr(self, name)
            if not lo <= v <= hi:
                raise ConfigError(f"parameter '{name}' is {v}; allowed: {lo}..{hi}")
        for name in ("epochs", "batch_size", "eval_every_epochs"):
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


def _apply(cfg, values: dict, origin: str, stage: str | None = None):
    """Set `values` on `cfg`; with `stage`, a key that has no effect on that stage is an error (the
    YAML `common:` block passes none: it holds keys for several stages)."""
    if values is None:
        return
    if not isinstance(values, dict):
        raise ConfigError(f"{origin}: {values!r} is not a mapping of settings; expected key: value lines")
    known = {f.name: f for f in dataclasses.fields(cfg)}
    for name, value in values.items():
        name = ALIASES.get(name, name) if name not in known else name
        if name not in known:
            close = difflib.get_close_matches(str(name), known, 1)
            hint = f"; did you mean '{close[0]}'?" if close else "; `emo_train --help` lists every stage's settings"
            raise ConfigError(f"parameter '{name}' ({origin}) is unknown{hint}")
        stages = known[name].metadata.get("stages", ())
        if stage is not None and stage not in stages:
            raise ConfigError(f"parameter '{name}' ({origin}) has no effect on stage '{stage}'; it is used by: "
                              f"{', '.join(stages)}")
        setattr(cfg, name, _coerce(name, value, getattr(cfg, name)))


def _read_file(path) -> dict:
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist")
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict) or set(doc) - {"common", *STAGES, GENERATE}:
        raise ConfigError(f"config file '{path}': top-level keys {sorted(doc) if isinstance(doc, dict) else doc}; "
                          f"allowed: common, {', '.join(STAGES)}, {GENERATE}")
    return doc


def _overrides(cfg, overrides, stage: str):
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set '{item}': expected key=value")
        k, v = item.split("=", 1)
        _apply(cfg, {k.strip(): v}, "--set", stage)


def load(stage: str, path=None, overrides=(), data=()) -> TrainConfig:
    """Defaults <- the file's `common:` <- its `<stage>:` block <- --set key=value <- --data format:root.
    A key in the stage's block or in --set must have an effect on the stage (`common:` may hold any)."""
    if stage not in STAGES:
        raise ConfigError(f"stage '{stage}' unknown; allowed: {', '.join(STAGES)}")
    cfg = TrainConfig()
    if path:
        doc = _read_file(path)
        _apply(cfg, doc.get("common"), f"{path}: common")
        _apply(cfg, doc.get(stage), f"{path}: {stage}", stage)
    _overrides(cfg, overrides, stage)
    for item in data:
        fmt, _, root = item.partition(":")
        cfg.data = list(cfg.data) + [{"format": fmt, "root": root}]
    cfg.check(stage)
    return cfg


@dataclass
class GenerateConfig:
    """emo_train generate (training/synthetic.py): where the learnable set goes and how big it is."""
    out: str = setting("", "folder to write lab/ and recola/ into (or --out FOLDER)", (GENERATE,))
    sessions: int = setting(12, "sessions of the lab layout", (GENERATE,))
    seconds: float = setting(16.0, "length of every session (lab and RECOLA layout), s", (GENERATE,))
    recola_sessions: int = setting(4, "sessions of the RECOLA layout (half train_*, half dev_*; 0 = none)",
                                   (GENERATE,))
    val_every: int = setting(4, "every val_every-th lab session is held out (val) in splits.csv", (GENERATE,))
    jobs: int = setting(1, "processes writing sessions at once (each session is drawn from its own seed: the same "
                           "sessions for any number)", (GENERATE,))

    def check(self):
        if not self.out:
            raise ConfigError("parameter 'out' is empty; give --out <folder> (or out: in the generate: block)")
        for name, lo, hi in (("sessions", 1, 1000), ("seconds", 1.0, 3600.0), ("recola_sessions", 0, 1000),
                             ("val_every", 2, 1000), ("jobs", 1, 64)):
            v = getattr(self, name)
            if not lo <= v <= hi:
                raise ConfigError(f"parameter '{name}' is {v}; allowed: {lo}..{hi}")


def load_generate(path=None, overrides=(), out: str | None = None) -> GenerateConfig:
    """Defaults <- the file's `generate:` block <- --set key=value <- --out (`common:` is for the stages)."""
    cfg = GenerateConfig()
    if path:
        _apply(cfg, _read_file(path).get(GENERATE), f"{path}: {GENERATE}", GENERATE)
    _overrides(cfg, overrides, GENERATE)
    if out:
        cfg.out = str(out)
    cfg.check()
    return cfg


def settings_help(width: int = 100) -> str:
    """Every stage's settings (--set KEY=VALUE or YAML), from the dataclasses: what `emo_train --help` shows."""
    import textwrap

    def entries(cls, keep):
        out = []
        for f in dataclasses.fields(cls):
            if keep(f.metadata.get("stages", ())):
                default = f.default_factory() if f.default is dataclasses.MISSING else f.default
                head = f"{f.name} ({type(default).__name__}, default {default!r}): "
                out += textwrap.wrap(head + f.metadata["help"], width, initial_indent="    ",
                                     subsequent_indent="        ")
        return out

    lines = ["settings (--set KEY=VALUE, or a YAML block: common: for every stage, <stage>: for one; a key a",
             "stage does not use is an error there):", "  every stage (face, audio, fusion):"]
    lines += entries(TrainConfig, lambda s: set(s) == set(STAGES))
    for stage in STAGES:
        lines += [f"  {stage} (besides every stage's):"]
        lines += entries(TrainConfig, lambda s, stage=stage: stage in s and set(s) != set(STAGES))
    lines += [f"  {GENERATE} (its own; YAML block {GENERATE}:):"]
    lines += entries(GenerateConfig, lambda s: True)
    return "\n".join(lines)
