"""ONNX Runtime backend: CPU everywhere, CUDA when onnxruntime-gpu is installed."""
from __future__ import annotations

import numpy as np

from .model_card import ONNX_DTYPES, ModelCard, ModelFileError, ModelRunError, check_model_io, verify_onnx_file


class OnnxRuntimeModel:
    backend = "onnxruntime"

    def __init__(self, card: ModelCard, device: str = "cpu", threads: int = 2, spin_wait: bool = False):
        import onnxruntime as ort

        path = verify_onnx_file(card)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning worker threads answer back-to-back runs ~30 % faster (bench_backends.py) but burn
        # a core between runs; at the nodes' 15-30 Hz that is waste, so it is off unless asked for.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin_wait else "0")
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):    # "cuda" or "cuda:<index>" (a torchrun rank's own GPU)
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ModelFileError("device 'cuda' asked for, but this onnxruntime has no CUDA provider; "
                                     "install onnxruntime-gpu or use device 'cpu'")
            index = int(device.partition(":")[2] or 0)
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": index}))
        try:
            self._session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelFileError(f"ONNX Runtime cannot load '{path}': {err}; re-export with `emo_export`") from err
        declared = lambda args: [(a.name, a.shape, ONNX_DTYPES.get(a.type, a.type)) for a in args]  # noqa: E731
        # outputs are fetched by name: their order may differ from the card's
        check_model_io(card, declared(self._session.get_inputs()), declared(self._session.get_outputs()),
                       str(path), ordered_outputs=False)
        self.card = card

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {k: np.ascontiguousarray(inputs[k], np.float32) for k in self.card.input_names()}
        try:
            outs = self._session.run(self.card.output_names(), feeds)
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own Fail/InvalidArgument types
            shapes = {k: v.shape for k, v in feeds.items()}
            raise ModelRunError(f"ONNX Runtime failed running '{self.card.name}' on inputs {shapes}: {err}") from err
        return dict(zip(self.card.output_names(), outs))

    def release(self):
        """Drop the session (its memory goes with it); run() is unusable after."""
        self._session = None
