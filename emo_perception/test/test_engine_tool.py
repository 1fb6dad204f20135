"""emo_engine: real INT8 calibration batches from real media; clear refusal where TensorRT is missing."""
import cv2
import numpy as np
import pytest
from skimage import data

from emo_perception.cli import engine
from emo_perception.runtime import engine_plan
from media import SPEECH_DIR, speech_16k


def test_face_calibration_samples_are_real_runtime_crops(tmp_path):
    for i, img in enumerate([data.astronaut(), data.chelsea(), data.coffee()]):
        cv2.imwrite(str(tmp_path / f"{i}.png"), img[:, :, ::-1])
    (tmp_path / "broken.png").write_bytes(b"not an image")
    samples = engine_plan.face_calibration_samples(sorted(tmp_path.iterdir()))
    assert samples["face"].shape == (1, 1, 64, 64)          # only the astronaut has a face
    assert samples["face"].std() > 0.1


def test_audio_calibration_samples_are_log_mel_windows():
    speech_16k(1.0)
    samples = engine_plan.audio_calibration_samples(sorted(SPEECH_DIR.glob("*.wav"))[:2])
    assert samples["log_mel"].shape[1:] == (1, 96, 64) and len(samples["log_mel"]) > 8
    assert np.isfinite(samples["log_mel"]).all()


def test_engine_tool_refuses_cleanly_without_tensorrt(capsys):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT present: the real build is covered by test_backends")
    except ImportError:
        pass
    assert engine.main([]) == 1              # the package YAML: the face node's expression teacher
    assert "TensorRT is not available" in capsys.readouterr().err
