"""Stage `face`: the student face encoder by knowledge distillation from the expression teacher
(Schoneveld et al. 2021, Sec. 3.1): temperature-scaled KL divergence to the teacher's soft labels
on every face (labelled or not: unlabeled faces are the extra data of self-distillation), plus
CCC (or MSE) on valence/arousal where labels exist and cross-entropy where a hard expression label
exists (AffectNet). Faces are the crops the face node makes (features.py), AffectNet's images
are cropped from their boxes by the same crop code.

The teacher is any face model card (`teacher_model`, or `teacher=`): the shipped expression teacher,
or a model brought in with emo_import_model (HSEmotion, EmoNet, ...), which sees its own crops of the
same boxes (core/face_model_io.py) while the student sees its 64x64 grey ones. Where the teacher gives
valence/arousal, the student also learns to reproduce them (CCC or MSE, weight kd_weight) on every
face, labelled or not: unlabeled recordings are enough. The student's expression head takes the
teacher's classes, and its card names them."""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import torch
import torch.nn.functional as F

from ..core.face_crop import crop_patches
from ..core.face_model_io import face_model_io
from ..core.metrics import ccc
from ..inference import load_model
from ..inference.model_card import load_card
from ..nets.face_encoder import FaceEncoder, FaceEncoderConfig
from ..nets.losses import masked_ccc_loss
from ..paths import resolve_model
from .crops import Crops, Rows
from .data import Skips, labelled_span, media_end, read_all, session_faces
from .grid import ccc_scores, grid_times, hold_on_grid, labels_at, person_tracks, pooled


@dataclasses.dataclass
class FaceItems:
    crop: np.ndarray       # (N, 64, 64) uint8 (a Crops: memory-mapped cache files)
    teacher: np.ndarray    # (N, K) teacher logits (log-probabilities), K: the teacher's classes
    va: np.ndarray         # (N, 2) NaN = no label
    expression: np.ndarray  # (N,) teacher class, -1 none
    teacher_va: np.ndarray | None = None   # (N, 2) the teacher's own valence/arousal, NaN where it has none
    augment: bool = True

    def __post_init__(self):
        if self.teacher_va is None:
            self.teacher_va = np.full((len(self.crop), 2), np.nan, np.float32)

    def __len__(self):
        return len(self.crop)

    def batch(self, idx, seeds) -> dict:
        """`seeds`: one per item (loop.py), so an item is augmented alike on any number of ranks."""
        x = torch.from_numpy(self.crop[idx]).float().div(127.5).sub(1).unsqueeze(1)     # (B, 1, 64, 64)
        if self.augment:
            for i, seed in enumerate(seeds):
                g = torch.Generator().manual_seed(seed)
                flip, gain, bias = torch.rand(3, generator=g)
                xi = x[i].flip(-1) if flip < 0.5 else x[i]
                xi = (xi * (0.8 + 0.4 * gain) + (bias - 0.5) * 0.3).clamp(-1, 1)    # contrast, brightness
                dx, dy = (int(v) for v in torch.randint(-3, 4, (2,), generator=g))    # shift +-3 px
                x[i] = torch.roll(xi, (dy, dx), dims=(1, 2))
        return {"face": x, "teacher": torch.from_numpy(self.teacher[idx]), "va": torch.from_numpy(self.va[idx]).float(),
                "expression": torch.from_numpy(self.expression[idx]).long(),
                "teacher_va": torch.from_numpy(self.teacher_va[idx]).float()}


def _rows(faces, mask, every_s: float | None):
    """Indices of the face rows in `mask`, at most one per `every_s` seconds (None: all)."""
    rows = np.flatnonzero(mask)
    if every_s:
        keep, last = [], -np.inf
        for r in rows:
            if faces["time"][r] - last >= every_s - 1e-6:
                keep.append(r)
                last = faces["time"][r]
        rows = np.array(keep, int)
    return rows


def build_student(cfg, n_expressions: int = 7) -> torch.nn.Module:
    """The student, with one expression logit per teacher class."""
    if cfg.backbone == "face_encoder":
        return FaceEncoder(FaceEncoderConfig(embedding_dim=cfg.embedding_dim, n_expressions=n_expressions))
    from ..nets.torchvision_face import TorchvisionFaceConfig, TorchvisionFaceEncoder

    model = TorchvisionFaceEncoder(TorchvisionFaceConfig(arch=cfg.backbone.split(":", 1)[1],
                                                         embedding_dim=cfg.embedding_dim,
                                                         n_expressions=n_expressions))
    if cfg.backbone_weights:
        model.load_backbone(cfg.backbone_weights)
    return model


IMAGE_CHUNK = 2048     # AffectNet images per cache file (8 MB of crops): the unit shared out over the ranks


@dataclasses.dataclass
class ImageChunk:
    """Up to IMAGE_CHUNK still images of one split, cropped and labelled by the teacher into one cache file."""
    split: str
    index: int
    images: list
    teacher_card: object
    backend: str = "onnxruntime"     # where the teacher runs (extract_backend, extract_device): not in the key
    device: str = "cpu"

    @property
    def name(self) -> str:
        return f"affectnet-{self.split}-{self.index:05d}"

    def load(self, cache_dir) -> dict:
        from ..inference.model_card import load_card
        from .features import _cached, code_hash

        rows = [(str(i.path), i.box, round(i.roll, 4), i.expression, i.valence, i.arousal) for i in self.images]
        parts = {"code": code_hash(("core/face_crop.py", "training/face_stage.py")),
                 "teacher": load_card(self.teacher_card).model_id,
                 "rows": hashlib.sha256(repr(rows).encode()).hexdigest()}
        return _cached(cache_dir, self.name, "images", parts,
                       lambda: crop_images(self.images, self.teacher_card, self.backend, self.device))


def image_chunks(images, teacher_card, cfg=None) -> list:
    """The images of each split in chunks of IMAGE_CHUNK, in the data set's order (`cfg`: the teacher
    runs where cfg.extract_backend / extract_device say; None: ONNX Runtime on the CPU)."""
    from .data import extract_device

    where = (cfg.extract_backend, extract_device(cfg)) if cfg is not None else ("onnxruntime", "cpu")
    out = []
    for split in ("train", "val"):
        chosen = [i for i in images if i.split == split]
        out += [ImageChunk(split, k // IMAGE_CHUNK, chosen[k:k + IMAGE_CHUNK], teacher_card, *where)
                for k in range(0, len(chosen), IMAGE_CHUNK)]
    return out


TEACHER_BATCH = 64     # faces per teacher call on still images


def crop_images(chosen, teacher_card, backend: str = "onnxruntime", device: str = "cpu") -> dict:
    """Still images -> the student's crops, the teacher's logits (log-probabilities) and its own
    valence/arousal (NaN for a teacher of categories alone) on its own crops of the same boxes."""
    import cv2

    teacher = load_model(teacher_card, backend, device=device)
    io = face_model_io(teacher.card)
    crops, va, expr, unreadable, logits, teacher_va, pending = [], [], [], [], [], [], []

    def flush():
        if pending:
            _, probs, tva = io.read(teacher.run({io.input: np.concatenate(pending)}), len(pending))
            logits.append(np.log(np.maximum(probs, 1e-12)))
            teacher_va.append(tva if io.gives_valence_arousal else np.full_like(tva, np.nan))
            pending.clear()
    for im in chosen:
        bgr = cv2.imread(str(im.path), cv2.IMREAD_COLOR)
        if bgr is None:
            unreadable.append(str(im.path))
            continue
        rgb = bgr[:, :, ::-1]
        crops.append(crop_patches(rgb, [im.box], rolls=[im.roll])[0])
        pending.append(io.crops(rgb, [im.box], rolls=[im.roll]))
        va.append((im.valence, im.arousal))
        expr.append(im.expression)
        if len(pending) == TEACHER_BATCH:
            flush()
    flush()
    k = len(io.expression_labels)
    return {"crop": np.array(crops, np.uint8).reshape(-1, 64, 64),
            "logits": np.concatenate(logits).astype(np.float32) if logits else np.zeros((0, k), np.float32),
            "va": np.array(va, np.float32).reshape(-1, 2), "expression": np.array(expr, np.int64),
            "teacher_va": np.concatenate(teacher_va).astype(np.float32) if teacher_va else np.zeros((0, 2), np.float32),
            "unreadable": np.array(unreadable, dtype="U512")}


def teacher_io(card_path):
    """The teacher's inputs and heads (core/face_model_io.py); ConfigError for one the student cannot learn from."""
    from ..runtime.params import ConfigError

    try:
        io = face_model_io(load_card(card_path))
    except ValueError as err:
        raise ConfigError(f"parameter 'teacher_model' is '{card_path}': {err}") from err
    if not io.expression_labels:
        raise ConfigError(f"parameter 'teacher_model' is '{card_path}', a model without expression logits; allowed: "
                          "a face model card with an expression head (the student distils its probabilities)")
    return io


class FaceStage:
    name = "face"

    def __init__(self, cfg, verbose: bool = True):
        self.cfg = cfg
        self.skips = Skips(verbose)
        ds = read_all(cfg, self.skips)
        self.teacher_card = resolve_model(cfg.teacher_model, "expression_teacher")
        self.teacher_io = teacher_io(self.teacher_card)
        own_va = self.teacher_io.gives_valence_arousal   # the teacher's valence/arousal are targets too

        def teacher_va(faces, rows):
            return faces["va"][rows] if own_va else np.full((len(rows), 2), np.nan, np.float32)
        parts = {"train": [], "val": []}
        self.val_sessions = {}                     # name -> (rows (N, 64, 64), times, labels on the grid)
        for s in ds.sessions:
            if s.split == "test":
                continue
            faces = session_faces(cfg, s, str(self.teacher_card), self.skips, keep_crops=True)
            if faces is None:
                continue
            span = labelled_span(s, media_end(faces, None), self.skips, cfg.annotation_delay) \
                if s.annotations is not None else None
            persons = list(s.annotations.series) if s.annotations is not None else []
            tracks = person_tracks(faces, persons) if persons else {}
            every = 1.0 / cfg.train_fps if s.split == "train" else None
            labelled = set()
            for person, track in tracks.items():
                rows = _rows(faces, faces["track"] == track, every)
                va = labels_at(s.annotations.series[person], faces["time"][rows], cfg.annotation_delay)
                if span is None:
                    va[:] = np.nan
                parts[s.split].append((Rows(faces["crop"], rows), faces["logits"][rows], va, None,
                                       teacher_va(faces, rows)))
                labelled.add(track)
                if s.split == "val" and span is not None:
                    grid = grid_times(*span)
                    self.val_sessions[f"{s.name}/{person}" if len(tracks) > 1 else s.name] = (
                        faces["crop"][rows], faces["time"][rows], grid,
                        labels_at(s.annotations.series[person], grid, cfg.annotation_delay))
            others = ~np.isin(faces["track"], list(labelled))
            if others.any():                        # unlabeled faces: distillation only
                rows = _rows(faces, others, every)
                parts[s.split].append((Rows(faces["crop"], rows), faces["logits"][rows],
                                       np.full((len(rows), 2), np.nan), None, teacher_va(faces, rows)))
        images = self._images(ds.images)
        self.train_set = self._items(parts["train"] + images["train"], cfg.augment)
        self.val_set = self._items(parts["val"] + images["val"], False)
        if not len(self.train_set):
            raise ValueError("no training faces: every session was skipped (see the reasons above)")
        self.model = build_student(cfg, len(self.teacher_io.expression_labels))
        # the student's card names its expression classes: the teacher's (export.py)
        self.checkpoint_extra = {"expression_labels": list(self.teacher_io.expression_labels),
                                 "teacher_model_id": load_card(self.teacher_card).model_id}
        self.kind = "face_encoder" if cfg.backbone == "face_encoder" else "torchvision_face_encoder"

    def _images(self, images) -> dict:
        """AffectNet images -> crops by the node's crop code and the teacher's logits on them, cached
        in chunks of IMAGE_CHUNK per split (keyed like the session features: code, teacher id, the CSV
        rows' content; under torchrun each chunk is made by one rank: extract.py)."""
        out = {"train": [], "val": []}
        for chunk in image_chunks(images, self.teacher_card, self.cfg):
            data = chunk.load(self.cfg.cache_dir)
            for path in data["unreadable"]:
                self.skips.add(str(path), "unreadable image")
            if len(data["crop"]):
                out[chunk.split].append((data["crop"], data["logits"], data["va"], data["expression"],
                                         data["teacher_va"]))
        return out

    @staticmethod
    def _items(parts, augment) -> FaceItems:
        """`parts`: (crops, teacher logits, labels, hard expressions or None, teacher va or None) each."""
        if not parts:
            return FaceItems(np.zeros((0, 64, 64), np.uint8), np.zeros((0, 7), np.float32),
                             np.zeros((0, 2), np.float32), np.zeros(0, int), augment=augment)
        expr = [p[3] if len(p) > 3 and p[3] is not None else np.full(len(p[0]), -1) for p in parts]
        tva = [p[4] if len(p) > 4 and p[4] is not None else np.full((len(p[0]), 2), np.nan) for p in parts]
        return FaceItems(Crops([p[0] for p in parts]),       # read from the cache files as batches ask
                         np.concatenate([p[1] for p in parts]).astype(np.float32),
                         np.concatenate([p[2] for p in parts]).astype(np.float32),
                         np.concatenate(expr).astype(np.int64), np.concatenate(tva).astype(np.float32), augment)

    def model_args(self):
        return dataclasses.asdict(self.model.config)

    def config_dict(self):
        return dataclasses.asdict(self.cfg)

    def loss(self, net, batch):
        cfg = self.cfg
        _, logits, va = net(batch["face"])
        t = cfg.temperature
        kd = F.kl_div(F.log_softmax(logits / t, -1), F.log_softmax(batch["teacher"] / t, -1), log_target=True,
                      reduction="batchmean") * t * t
        va_loss = self._va_loss(va, batch["va"])                 # the labels, where there are some
        tva_loss = self._va_loss(va, batch["teacher_va"])        # the teacher's own, where it has them
        has = batch["expression"] >= 0
        ce = F.cross_entropy(logits[has], batch["expression"][has]) if has.any() else logits.sum() * 0
        loss = cfg.kd_weight * (kd + tva_loss) + cfg.va_weight * va_loss + cfg.expression_weight * ce
        return loss, {"kd": kd.item(), "va": va_loss.item(), "teacher_va": tva_loss.item(), "ce": ce.item()}

    def _va_loss(self, va, gold):
        """va_loss over the finite entries of `gold` (0 where none)."""
        if self.cfg.va_loss == "ccc":
            return masked_ccc_loss(va, gold, dim=0)
        ok = torch.isfinite(gold)
        return ((va - torch.nan_to_num(gold)) ** 2 * ok).sum() / ok.sum().clamp_min(1)

    @torch.no_grad()
    def _predict(self, model, crops_u8):
        model.eval()
        dev = next(model.parameters()).device
        outs = [model(torch.from_numpy(crops_u8[k:k + 256]).float().div(127.5).sub(1).unsqueeze(1).to(dev))
                for k in range(0, len(crops_u8), 256)]
        return (torch.cat([o[1] for o in outs]).cpu().numpy(), torch.cat([o[2] for o in outs]).cpu().numpy())

    def evaluate(self, model) -> dict:
        out = {}
        if len(self.val_set):
            v = self.val_set
            logits, va = self._predict(model, v.crop)
            out["teacher_agreement"] = float(np.mean(logits.argmax(1) == v.teacher.argmax(1)))
            hard = v.expression >= 0
            if hard.any():   # AffectNet's protocol: accuracy on its validation images' expressions
                out["expression_accuracy"] = float(np.mean(logits[hard].argmax(1) == v.expression[hard]))
            for j, dim in enumerate(("valence", "arousal")):   # per face (AffectNet reports this way)
                ok = np.isfinite(v.va[:, j])
                if ok.sum() >= 2:
                    out[f"face_ccc_{dim}"] = ccc(va[ok, j], v.va[ok, j])
                ok = np.isfinite(v.teacher_va[:, j])            # how well the student reproduces its teacher
                if ok.sum() >= 2:
                    out[f"teacher_ccc_{dim}"] = ccc(va[ok, j], v.teacher_va[ok, j])
        pred, gold = {}, {}
        for name, (crops, times, grid, labels) in self.val_sessions.items():
            _, va = self._predict(model, crops)
            pred[name] = hold_on_grid(times, va.astype(np.float64), grid)[0]
            gold[name] = labels
        out.update(pooled(self, ccc_scores(pred, gold)))
        model.train()
        return out

    def export_model(self, model):
        return model

    def summary(self) -> dict:
        return {"train_faces": len(self.train_set), "val_faces": len(self.val_set),
                "val_sessions": len(self.val_sessions), **self.skips.summary()}
