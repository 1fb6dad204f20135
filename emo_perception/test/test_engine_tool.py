"""emo_engine: real INT8 calibration batches from real media; clear refusal where TensorRT is missing."""
import pathlib

import cv2
import numpy as np
import pytest
from skimage import data

from emo_perception.tools import engine
from media import SPEECH_DIR, speech_16k


def test_face_calibration_batches_are_real_runtime_crops(tmp_path):
    for i, img in enumerate([data.astronaut(), data.chelsea(), data.coffee()]):
        cv2.imwrite(str(tmp_path / f"{i}.png"), img[:, :, ::-1])
    (tmp_path / "broken.png").write_bytes(b"not an image")
    batches = engine.face_calibration_batches(sorted(tmp_path.iterdir()), batch=1)
    assert len(batches) == 1                    # only the astronaut has a face
    assert batches[0].shape == (1, 1, 64, 64) and batches[0].std() > 0.1


def test_audio_calibration_batches_are_log_mel_windows():
    speech_16k(1.0)
    batches = engine.audio_calibration_batches(sorted(SPEECH_DIR.glob("*.wav"))[:2], batch=4)
    assert batches and all(b.shape == (4, 1, 96, 64) for b in batches)
    assert np.isfinite(np.concatenate(batches)).all()


def test_engine_tool_refuses_cleanly_without_tensorrt(capsys):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT present: the real build is covered by test_backends")
    except ImportError:
        pass
    card = pathlib.Path(__file__).resolve().parents[1] / "models" / "expression_teacher.json"
    assert engine.main(["--model", str(card)]) == 1
    assert "TensorRT is not available" in capsys.readouterr().err
