"""Voice activity probability from silero-vad (MIT; the ONNX model ships in the silero-vad package).

The model takes 512-sample chunks at 16 kHz plus 64 samples of context from the previous chunk, and
carries an LSTM state between chunks. We feed it the newest audio of each hop and report the
probability of its last chunk.
"""
from __future__ import annotations

import importlib.util
import pathlib

import numpy as np

CHUNK = 512    # samples per model call at 16 kHz (32 ms)
CONTEXT = 64   # samples of the previous chunk the model expects in front of each chunk


def default_model_path() -> str:
    # find_spec locates the package without running its __init__, which imports torch (seconds, and
    # hundreds of MB in every audio node) only for functions we do not use
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("silero-vad is not installed: pip install --no-deps silero-vad==6.2.3")
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing from the silero-vad package")
    return str(path)


class VoiceActivity:
    """Streaming silero-vad: call with consecutive 16 kHz audio; returns the latest speech probability."""

    def __init__(self, model_path: str | None = None, threads: int = 1):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(model_path or default_model_path(), opts,
                                             providers=["CPUExecutionProvider"])
        self.reset()

    def reset(self):
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)
        self.probability = 0.0

    def __call__(self, samples: np.ndarray) -> float:
        """Feed new samples (any length); returns the probability of the newest complete chunk."""
        self._pending = np.concatenate([self._pending, np.asarray(samples, np.float32)])
        while self._pending.size >= CHUNK:
            chunk, self._pending = self._pending[:CHUNK], self._pending[CHUNK:]
            x = np.concatenate([self._context, chunk])[None, :]
            prob, self._state = self._session.run(
                None, {"input": x, "state": self._state, "sr": np.array(16000, np.int64)})
            self._context = chunk[-CONTEXT:]
            self.probability = float(prob[0, 0])
        return self.probability
