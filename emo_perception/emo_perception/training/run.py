"""One stage from configuration to exported model card: the body of `emo_train <stage>`."""
from __future__ import annotations

import dataclasses
import json
import random
import sys

import numpy as np
import torch

from . import distributed, extract, features
from ..nets import checkpoint as ckpt_io
from .loop import fit
from .sessions import NO_HELD_OUT

DEFAULT_NAMES = {"face": "face_encoder", "audio": "audio_encoder", "fusion": "fusion_gru"}


def stage_class(stage: str):
    if stage == "face":
        from .face_stage import FaceStage
        return FaceStage
    if stage == "audio":
        from .audio_stage import AudioStage
        return AudioStage
    from .fusion_stage import FusionStage
    return FusionStage


def train_stage(stage: str, cfg, resume: bool = False, progress: bool = True) -> dict:
    """Train, evaluate on the held-out split, export ONNX + card; returns (rank 0) the summary that is
    also written to <out_dir>/summary.json. Other ranks return {}."""
    from ..inference.export import export

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    world = distributed.start(cfg.device)
    try:
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        random.seed(cfg.seed)
        out_dir = cfg.run_dir(stage)
        out_dir.mkdir(parents=True, exist_ok=True)
        device, why_cpu = extract.resolve_device(cfg, world)
        cfg = dataclasses.replace(cfg, extract_device=device)
        if progress:
            rank = f"rank {world.rank}: " if world.size > 1 else ""
            features.progress_note = lambda text: print(f"emo_train: {rank}{text}", file=sys.stderr, flush=True)
        try:
            mine = extract.extract_shared(stage, cfg, world)     # several ranks: each extracts its share, once
            task = stage_class(stage)(cfg, verbose=world.main)   # every rank: loads the complete cache
        finally:
            features.progress_note = None
        extraction = {**extract.record(world, mine, cfg.cache_dir), "device": device,
                      "backend": cfg.extract_backend, "batch": cfg.extract_batch}
        if why_cpu:
            extraction["warning"] = " ".join(filter(None, (extraction.get("warning"), why_cpu)))
        summary = fit(task, dataclasses.replace(cfg, out_dir=str(out_dir)), world, resume, progress)
        if not world.main:
            return {}
        name = cfg.name or DEFAULT_NAMES[stage]
        export_dir = out_dir / "export"
        ckpt = export_dir / f"{name}.pt"
        ckpt_io.save(ckpt, task.export_model(task.model).cpu().eval(), task.kind, summary["steps"],
                    {"stage": stage, "config": dataclasses.asdict(cfg), **getattr(task, "checkpoint_extra", {})})
        card = export(ckpt, export_dir, name)
        summary.update(stage=stage, model_id=card.model_id, card=card.path, world_size=world.size,
                       val_per_session=dict(getattr(task, "per_session", {})), **task.summary(),
                       extraction=extraction)
        if "warning" in extraction:
            summary["warnings"] = [*summary.get("warnings", []), extraction["warning"]]
            print(f"emo_train: warning: {extraction['warning']}", file=sys.stderr)
        if not summary["val"] and not any(w.startswith(NO_HELD_OUT) for w in summary.get("warnings", [])):
            # held-out data was there but none of it could be used (skipped: see the reasons)
            text = (f"{NO_HELD_OUT} left: every held-out session or image was skipped (see skipped_items), so "
                    f"nothing was evaluated and 'val' is empty")
            summary["warnings"] = [*summary.get("warnings", []), text]
            print(f"emo_train: warning: {text}", file=sys.stderr)
        if stage == "fusion":
            from .fusion_stage import runtime_scores
            summary["val_without_face"] = task.evaluate(task.model, drop="face")
            summary["val_without_voice"] = task.evaluate(task.model, drop="audio")
            if cfg.runtime_baselines:
                summary["baselines"] = runtime_scores(task, card.path)
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
        return summary
    finally:
        distributed.stop(world)

