"""Checkpoints that hold everything needed to rebuild a model (nanoGPT-style)."""
from __future__ import annotations

import dataclasses
import pathlib

import torch


def save(path, model: torch.nn.Module, kind: str, step: int = 0, extra: dict | None = None):
    """Write {'kind', 'model_args', 'state_dict', 'step', 'extra'} to `path`."""
    ckpt = {"kind": kind, "model_args": dataclasses.asdict(model.config), "state_dict": model.state_dict(),
            "step": step, "extra": extra or {}}
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)


def load(path) -> tuple[torch.nn.Module, dict]:
    """Rebuild the model recorded in a checkpoint; returns (model in eval mode, checkpoint dict)."""
    from . import registry

    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several unrelated types for a corrupt file
        raise ValueError(f"checkpoint '{path}' is not a readable torch checkpoint: {err}") from err
    model = registry.build(ckpt["kind"], ckpt["model_args"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt
