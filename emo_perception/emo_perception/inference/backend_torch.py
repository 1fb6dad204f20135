"""Torch backend: rebuilds the model from its checkpoint (debugging, training-time checks)."""
from __future__ import annotations

import numpy as np

from .model_card import ModelCard, ModelFileError, ModelRunError, check_model_io, sha256


class TorchModel:
    backend = "torch"

    def __init__(self, card: ModelCard, device: str = "cpu", threads: int = 2):
        import torch

        from ..nets import checkpoint
        from ..nets.export_io import named_io_module, spec

        path = card.checkpoint_path
        if not card.checkpoint or not path.is_file():
            raise ModelFileError(f"checkpoint '{path}' named by card '{card.path}' does not exist; "
                                 "the torch backend needs the .pt next to the card")
        if sha256(path) != card.checkpoint_sha256:
            raise ModelFileError(f"checkpoint '{path}' does not match its card '{card.path}' (sha256 differs)")
        if device.startswith("cuda") and not torch.cuda.is_available():   # "cuda" or "cuda:<index>"
            raise ModelFileError("device 'cuda' asked for, but torch sees no CUDA GPU; use device 'cpu'")
        torch.set_num_threads(threads)
        model, ckpt = checkpoint.load(path)
        io = spec(ckpt["kind"], ckpt["model_args"])   # what the checkpoint's network takes and gives
        check_model_io(card, [(n, shape, "float32") for n, shape in io["inputs"]],
                       [(n, shape, "float32") for n, shape in io["outputs"]], str(path))
        self._module = named_io_module(model).to(device).eval()
        self._device = device
        self._torch = torch
        self.card = card

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        args = [torch.from_numpy(np.ascontiguousarray(inputs[k], np.float32)).to(self._device)
                for k in self.card.input_names()]
        with torch.inference_mode():
            try:
                outs = self._module(*args)
            except RuntimeError as err:     # torch's own (a CUDA fault, a shape the module refuses)
                raise ModelRunError(f"torch failed running '{self.card.name}': {err}") from err
        return {k: v.float().cpu().numpy() for k, v in zip(self.card.output_names(), outs)}

    def release(self):
        """Drop the module (and its GPU memory with device 'cuda'); run() is unusable after."""
        self._module = None
        if self._device.startswith("cuda"):
            self._torch.cuda.empty_cache()
