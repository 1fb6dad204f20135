"""Stage `fusion`: the model-level fusion GRU (nets/fusion_gru.py) on cached embedding sequences at
25 Hz, CCC loss on valence and arousal, modality dropout, annotation delay.

The sequences are what the fusion node sees: the face model's embeddings of the annotated person's
track and the audio model's embeddings, each held onto the 25 Hz grid like the node's aligner
(grid.py), with a presence mask. Modality dropout removes the face or the voice from a whole chunk
(never both), so the model holds when the face is lost or the voice is given to someone else (the
node's speaker attribution gives a track no audio while another person speaks)."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..inference.model_card import load_card
from ..nets.fusion_gru import FusionGRU, FusionGRUConfig
from ..nets.losses import masked_ccc_loss
from ..paths import resolve_model
from .data import Skips, labelled_span, media_end, read_all, session_audio, session_faces
from ..core.egemaps import DIM as EGEMAPS_DIM
from ..core.face_landmarks import BLENDSHAPE_NAMES
from .data import audio_config, face_config
from .features import audio_model_id, landmarker_ids
from .grid import PERIOD, ccc_scores, grid_times, hold_on_grid, labels_at, person_tracks, pooled


CONFIDENCE_WEIGHT = 0.1


@dataclasses.dataclass
class Sequence:
    name: str
    face: np.ndarray      # (T, Df)
    audio: np.ndarray     # (T, Da)
    mask: np.ndarray      # (T, 2)
    va: np.ndarray        # (T, 2) NaN = no label
    times: np.ndarray     # (T,) grid times (s from the media start)


@dataclasses.dataclass
class Chunks:
    sequences: list
    starts: list          # (sequence index, first step)
    steps: int
    dropout: float = 0.0

    def __len__(self):
        return len(self.starts)

    def batch(self, idx, seeds):
        face, audio, mask, va = [], [], [], []
        for i in idx:
            s, k = self.starts[i]
            seq = self.sequences[s]
            sl = slice(k, k + self.steps)
            face.append(seq.face[sl])
            audio.append(seq.audio[sl])
            mask.append(seq.mask[sl])
            va.append(seq.va[sl])
        mask = torch.from_numpy(np.stack(mask)).float()
        if self.dropout:
            u = torch.tensor([torch.rand(1, generator=torch.Generator().manual_seed(s)).item() for s in seeds])
            mask[u < self.dropout, :, 0] = 0                                          # no face
            mask[(u >= self.dropout) & (u < 2 * self.dropout), :, 1] = 0              # no voice
        return {"face": torch.from_numpy(np.stack(face)), "audio": torch.from_numpy(np.stack(audio)), "mask": mask,
                "va": torch.from_numpy(np.stack(va)).float()}


def session_sequences(cfg, session, face_model: str, audio_model: str, skips: Skips) -> tuple:
    """The session's sequences on the grid, one per annotated person, and the features they came from
    ((faces, audio, labelled span), for scoring through the runtime); ([], None) when it cannot be used."""
    faces = session_faces(cfg, session, face_model, skips, need_face=False, landmarks=on_blendshapes(cfg))
    audio = session_audio(cfg, session, audio_model, skips, need_sound=False)
    if faces is None and audio is None:
        return [], None
    if faces is not None and not len(faces["time"]):
        skips.add(f"{session.name} (faces)",
                  f"no face found: none in {len(faces['frame_times'])} frames; trained as voice only")
    span = labelled_span(session, media_end(faces, audio), skips, cfg.annotation_delay)
    if span is None:
        return [], None
    grid = grid_times(*span)
    tracks = person_tracks(faces, list(session.annotations.series)) if faces is not None else {}
    feature = faces[cfg.face_feature] if faces is not None else None
    face_dim = feature.shape[1] if faces is not None else 0
    out = []
    for person, series in session.annotations.series.items():
        if person in tracks:
            rows = faces["track"] == tracks[person]
            f, fp = hold_on_grid(faces["time"][rows], feature[rows], grid)
            if on_blendshapes(cfg):      # a face the landmarker did not confirm: no blendshapes, not fused
                fp &= np.isfinite(f).all(axis=1)
                f[~fp] = 0.0
        else:
            f, fp = np.zeros((len(grid), face_dim), np.float32), np.zeros(len(grid), bool)
        if audio is not None and len(audio["time"]):
            # placed audio_delay later, as the node's aligner places it
            a, ap = hold_on_grid(audio["time"] + cfg.audio_delay, audio["embedding"], grid, hold=PERIOD)
        else:
            a, ap = None, np.zeros(len(grid), bool)
        out.append(Sequence(f"{session.name}/{person}" if len(session.annotations.series) > 1 else session.name,
                            f, a, np.stack([fp, ap], 1).astype(np.float32),
                            labels_at(series, grid, cfg.annotation_delay), grid))
    return out, (faces, audio, span)


def _fill_dims(seqs, face_dim, audio_dim):
    for s in seqs:
        if s.face.shape[1] != face_dim:
            s.face = np.zeros((len(s.times), face_dim), np.float32)
        if s.audio is None:
            s.audio = np.zeros((len(s.times), audio_dim), np.float32)


def on_blendshapes(cfg) -> bool:
    """The GRU's face input is MediaPipe's 52 blendshapes (extracted with the landmarker), not the face
    model's embedding; the face node needs face_landmarks to feed it."""
    return cfg.face_feature == "blendshapes"


def feature_models(cfg) -> tuple[str, str]:
    """The face and audio model the GRU's features come from, as the stage names them to the cache."""
    builtin = cfg.audio_model in ("logmel_stats", "egemaps")     # no model card
    return (load_card(resolve_model(cfg.face_model, "expression_teacher")).path,
            cfg.audio_model if builtin else str(resolve_model(cfg.audio_model, cfg.audio_model)))


class FusionStage:
    name = "fusion"
    kind = "fusion_gru"

    def __init__(self, cfg, verbose: bool = True):
        self.cfg = cfg
        self.skips = Skips(verbose)
        ds = read_all(cfg, self.skips)
        self.face_card = load_card(resolve_model(cfg.face_model, "expression_teacher"))
        _, self.audio_model = feature_models(cfg)
        self.audio_model_id = audio_model_id(audio_config(cfg, self.audio_model))
        face_dim = len(BLENDSHAPE_NAMES) if on_blendshapes(cfg) else int(self.face_card.outputs[0]["shape"][-1])
        audio_dim = {"logmel_stats": 128, "egemaps": EGEMAPS_DIM}.get(cfg.audio_model) or \
            int(load_card(self.audio_model).outputs[0]["shape"][-1])
        seqs = {"train": [], "val": []}
        self.val_features = []      # (session, faces, audio, span) of the held-out sessions
        for s in ds.sessions:
            if s.split == "test" or s.annotations is None:
                continue
            got, features = session_sequences(cfg, s, self.face_card.path, self.audio_model, self.skips)
            seqs[s.split] += got
            if got and s.split == "val":
                self.val_features.append((s, *features))
        for split in seqs:
            _fill_dims(seqs[split], face_dim, audio_dim)
        self.val = seqs["val"]
        steps = int(round(cfg.chunk_s / PERIOD))
        hop = max(1, int(round(cfg.chunk_hop_s / PERIOD)))
        starts = [(i, k) for i, s in enumerate(seqs["train"]) for k in range(0, max(1, len(s.times) - steps + 1), hop)
                  if len(s.times) >= steps]
        self.train_set = Chunks(seqs["train"], starts, steps, cfg.modality_dropout)
        if not len(self.train_set):
            raise ValueError(f"no training chunks of {cfg.chunk_s} s: every session was skipped or shorter "
                             "(see the reasons above; lower chunk_s)")
        self.model = FusionGRU(FusionGRUConfig(face_dim=face_dim, audio_dim=audio_dim,
                                               projection_dim=cfg.projection_dim, hidden_dim=cfg.hidden_dim,
                                               num_layers=cfg.num_layers, dropout=cfg.dropout,
                                               face_model_id=landmarker_ids(face_config(cfg, "", True))[-1]
                                               if on_blendshapes(cfg) else self.face_card.model_id,
                                               face_feature=cfg.face_feature, audio_model_id=self.audio_model_id,
                                               audio_delay=cfg.audio_delay))

    def model_args(self):
        return dataclasses.asdict(self.model.config)

    def config_dict(self):
        return dataclasses.asdict(self.cfg)

    def loss(self, net, batch):
        b = batch["face"].shape[0]
        state = torch.zeros(self.cfg.num_layers, b, self.cfg.hidden_dim, device=batch["face"].device)
        va, conf, _ = net(batch["face"], batch["audio"], batch["mask"], state)
        ccc = masked_ccc_loss(va, batch["va"], dim=1)
        # confidence learns how close the estimate is: 1 - mean absolute error (clipped), where labelled
        # and something was seen; the node publishes it as Affect.confidence
        gold = batch["va"]
        ok = torch.isfinite(gold).all(-1, keepdim=True) & (batch["mask"].amax(-1, keepdim=True) > 0)
        target = (1 - (va.detach() - torch.nan_to_num(gold)).abs().mean(-1, keepdim=True)).clamp(0, 1)
        conf_loss = ((conf - target) ** 2 * ok).sum() / ok.sum().clamp_min(1)
        return ccc + CONFIDENCE_WEIGHT * conf_loss, {"ccc_loss": ccc.item(), "confidence_loss": conf_loss.item()}

    @torch.no_grad()
    def predict(self, model, seq: Sequence, mask=None) -> np.ndarray:
        dev = next(model.parameters()).device
        m = torch.from_numpy(seq.mask if mask is None else mask)[None].to(dev)
        va, _, _ = model(torch.from_numpy(seq.face)[None].to(dev), torch.from_numpy(seq.audio)[None].to(dev), m,
                         model.initial_state(1).to(dev))
        return va[0].cpu().numpy().astype(np.float64)

    def evaluate(self, model, drop: str | None = None) -> dict:
        """CCC on the held-out sequences (whole sessions, from a zero state); `drop` 'face'/'audio'
        evaluates with that modality removed."""
        model.eval()
        pred, gold = {}, {}
        for seq in self.val:
            mask = seq.mask.copy()
            if drop:
                mask[:, 0 if drop == "face" else 1] = 0
            pred[seq.name], gold[seq.name] = self.predict(model, seq, mask), seq.va
        model.train()
        return pooled(self, ccc_scores(pred, gold))

    def export_model(self, model):
        return model

    def summary(self) -> dict:
        return {"train_chunks": len(self.train_set), "train_sequences": len(self.train_set.sequences),
                "val_sequences": len(self.val), **self.skips.summary()}


def runtime_scores(stage: FusionStage, card_path) -> dict:
    """The held-out sessions through the fusion node's pipeline: the exported GRU (on the features
    it was trained on) and the `prior` mode (on the shipped teacher and log-mel statistics, the
    node's defaults), plus what a constant predictor scores."""
    from ..runtime.config import FusionConfig as NodeFusionConfig
    from .runtime_eval import score_sessions

    cfg, skips = stage.cfg, Skips(verbose=False)
    teacher = str(resolve_model(cfg.teacher_model, "expression_teacher"))
    prior_items = [(s, session_faces(cfg, s, teacher, skips, need_face=False),
                    session_audio(cfg, s, "logmel_stats", skips, need_sound=False), span)
                   for s, _, _, span in stage.val_features]
    pick = ("ccc_valence", "ccc_arousal", "ccc_mean", "ccc_valence_session_mean", "ccc_arousal_session_mean")
    gru = score_sessions(stage.val_features, NodeFusionConfig(mode="gru", fusion_model=str(card_path),
                                                              audio_delay=cfg.audio_delay),
                         cfg.annotation_delay)
    prior = score_sessions(prior_items, NodeFusionConfig(mode="prior"), cfg.annotation_delay)
    return {"gru_runtime": {k: gru[k] for k in pick if k in gru}, "prior": {k: prior[k] for k in pick if k in prior},
            # CCC of any constant is 0 (no covariance): the floor a model must clear
            "constant": {k: 0.0 for k in pick}}
