"""Stage `face`: the student face encoder by knowledge distillation from the expression teacher
(Schoneveld et al. 2021, Sec. 3.1): temperature-scaled KL divergence to the teacher's soft labels
on every face (labelled or not: unlabeled faces are the extra data of self-distillation), plus
CCC (or MSE) on valence/arousal where labels exist and cross-entropy where a hard expression label
exists (AffectNet). Faces are the crops the face node makes (features.py), AffectNet's images
are cropped from their boxes by the same crop code."""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import torch
import torch.nn.functional as F

from ..core.circumplex import softmax
from ..core.face_crop import crop_faces
from ..core.metrics import ccc
from ..inference import load_model
from ..nets.face_encoder import FaceEncoder, FaceEncoderConfig
from ..nets.losses import masked_ccc_loss
from ..paths import resolve_model
from .data import Skips, labelled_span, media_end, read_all, session_faces
from .grid import ccc_scores, grid_times, hold_on_grid, labels_at, person_tracks, pooled


@dataclasses.dataclass
class FaceItems:
    crop: np.ndarray       # (N, 64, 64) uint8
    teacher: np.ndarray    # (N, 7) teacher logits (log-probabilities)
    va: np.ndarray         # (N, 2) NaN = no label
    expression: np.ndarray  # (N,) teacher class, -1 none
    augment: bool = True

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
                "expression": torch.from_numpy(self.expression[idx]).long()}


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


def build_student(cfg) -> torch.nn.Module:
    if cfg.backbone == "face_encoder":
        return FaceEncoder(FaceEncoderConfig(embedding_dim=cfg.embedding_dim))
    from ..nets.torchvision_face import TorchvisionFaceConfig, TorchvisionFaceEncoder

    model = TorchvisionFaceEncoder(TorchvisionFaceConfig(arch=cfg.backbone.split(":", 1)[1],
                                                         embedding_dim=cfg.embedding_dim))
    if cfg.backbone_weights:
        model.load_backbone(cfg.backbone_weights)
    return model


class FaceStage:
    name = "face"

    def __init__(self, cfg, verbose: bool = True):
        self.cfg = cfg
        self.skips = Skips(verbose)
        ds = read_all(cfg, self.skips)
        self.teacher_card = resolve_model(cfg.teacher_model, "expression_teacher")
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
                parts[s.split].append((faces["crop"][rows], faces["logits"][rows], va))
                labelled.add(track)
                if s.split == "val" and span is not None:
                    grid = grid_times(*span)
                    self.val_sessions[f"{s.name}/{person}" if len(tracks) > 1 else s.name] = (
                        faces["crop"][rows], faces["time"][rows], grid,
                        labels_at(s.annotations.series[person], grid, cfg.annotation_delay))
            others = ~np.isin(faces["track"], list(labelled))
            if others.any():                        # unlabeled faces: distillation only
                rows = _rows(faces, others, every)
                parts[s.split].append((faces["crop"][rows], faces["logits"][rows], np.full((len(rows), 2), np.nan)))
        images = self._images(ds.images)
        self.train_set = self._items(parts["train"] + images["train"], cfg.augment)
        self.val_set = self._items(parts["val"] + images["val"], False)
        if not len(self.train_set):
            raise ValueError("no training faces: every session was skipped (see the reasons above)")
        self.model = build_student(cfg)
        self.kind = "face_encoder" if cfg.backbone == "face_encoder" else "torchvision_face_encoder"

    def _images(self, images) -> dict:
        """AffectNet images -> crops by the node's crop code and the teacher's logits on them, cached
        per split (keyed like the session features: code, teacher id, the CSV rows' content)."""
        from ..inference.model_card import load_card
        from .features import _cached, code_hash

        out = {"train": [], "val": []}
        teacher_id = load_card(self.teacher_card).model_id
        for split in out:
            chosen = [i for i in images if i.split == split]
            if not chosen:
                continue
            rows = [(str(i.path), i.box, round(i.roll, 4), i.expression, i.valence, i.arousal) for i in chosen]
            parts = {"code": code_hash(("core/face_crop.py", "training/face_stage.py")), "teacher": teacher_id,
                     "rows": hashlib.sha256(repr(rows).encode()).hexdigest()}
            data = _cached(self.cfg.cache_dir, f"affectnet-{split}", "images", parts, lambda: self._crop(chosen))
            for path in data["unreadable"]:
                self.skips.add(str(path), "unreadable image")
            if len(data["crop"]):
                out[split].append((data["crop"], data["logits"], data["va"], data["expression"]))
        return out

    def _crop(self, chosen) -> dict:
        import cv2

        teacher = load_model(self.teacher_card, "onnxruntime")
        crops, va, expr, unreadable = [], [], [], []
        for im in chosen:
            bgr = cv2.imread(str(im.path), cv2.IMREAD_COLOR)
            if bgr is None:
                unreadable.append(str(im.path))
                continue
            crops.append(crop_faces(bgr[:, :, ::-1], [im.box], rolls=[im.roll])[0, 0])
            va.append((im.valence, im.arousal))
            expr.append(im.expression)
        x = np.stack(crops).astype(np.float32)[:, None] if crops else np.zeros((0, 1, 64, 64), np.float32)
        logits = [np.log(np.maximum(softmax(teacher.run({"face": x[k:k + 64]})["expression_logits"]), 1e-12))
                  for k in range(0, len(x), 64)]
        return {"crop": np.round((x[:, 0] + 1) * 127.5).astype(np.uint8),
                "logits": np.concatenate(logits).astype(np.float32) if logits else np.zeros((0, 7), np.float32),
                "va": np.array(va, np.float32).reshape(-1, 2), "expression": np.array(expr, np.int64),
                "unreadable": np.array(unreadable, dtype="U512")}

    @staticmethod
    def _items(parts, augment) -> FaceItems:
        if not parts:
            return FaceItems(np.zeros((0, 64, 64), np.uint8), np.zeros((0, 7), np.float32),
                             np.zeros((0, 2), np.float32), np.zeros(0, int), augment)
        expr = [p[3] if len(p) > 3 else np.full(len(p[0]), -1) for p in parts]
        return FaceItems(np.concatenate([p[0] for p in parts]),
                         np.concatenate([p[1] for p in parts]).astype(np.float32),
                         np.concatenate([p[2] for p in parts]).astype(np.float32),
                         np.concatenate(expr).astype(np.int64), augment)

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
        gold = batch["va"]
        if cfg.va_loss == "ccc":
            va_loss = masked_ccc_loss(va, gold, dim=0)
        else:
            ok = torch.isfinite(gold)
            va_loss = ((va - torch.nan_to_num(gold)) ** 2 * ok).sum() / ok.sum().clamp_min(1)
        has = batch["expression"] >= 0
        ce = F.cross_entropy(logits[has], batch["expression"][has]) if has.any() else logits.sum() * 0
        loss = cfg.kd_weight * kd + cfg.va_weight * va_loss + cfg.expression_weight * ce
        return loss, {"kd": kd.item(), "va": va_loss.item(), "ce": ce.item()}

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
