"""Doors run one way (the rooms' order is test_import_contract.py): core/, runtime/ and conversions
import without ROS or torch where a robot needs them so, and the tools that need no ROS do not pull it
in. Each check runs in a fresh interpreter, so nothing imported by other tests hides a dependency."""
import pathlib
import re
import subprocess
import sys

import pytest

PKG = pathlib.Path(__file__).resolve().parents[1] / "emo_perception"


def _imports_in_fresh_python(module: str) -> set:
    code = f"import sys, {module}; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return set(out.stdout.split())


@pytest.mark.parametrize("module", ["emo_perception.runtime", "emo_perception.runtime.offline",
                                    "emo_perception.runtime.handlers", "emo_perception.recordings.media",
                                    "emo_perception.conversions", "emo_perception.cli.engine",
                                    "emo_perception.recordings.sample_media", "emo_perception.cli.train",
                                    "emo_perception.training.run", "emo_perception.training.fusion_stage"])
def test_ros_free_modules_do_not_import_rclpy(module):
    assert "rclpy" not in _imports_in_fresh_python(module)


def test_core_has_no_ros_and_no_torch():
    for path in (PKG / "core").glob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+(rclpy|torch)\b", text, re.M), path


def test_haar_cascade_is_found_in_the_distro_opencv_data_or_named(monkeypatch, tmp_path):
    import shutil

    import cv2
    from emo_perception.core import face_detection
    real = face_detection.find_haar_cascade()
    monkeypatch.delattr(cv2, "data", raising=False)          # Debian/Ubuntu python3-opencv has no cv2.data
    distro = tmp_path / "opencv4" / "haarcascades"
    distro.mkdir(parents=True)
    monkeypatch.setattr(face_detection, "DISTRO_CASCADE_DIRS", (str(distro),))
    with pytest.raises(FileNotFoundError, match="apt install opencv-data"):
        face_detection.HaarFaceDetector()
    shutil.copy(real, distro / face_detection.CASCADE)     # what the opencv-data package installs
    assert face_detection.find_haar_cascade() == str(distro / face_detection.CASCADE)
    assert face_detection.HaarFaceDetector().name == "haar_frontalface_default"


def test_the_voice_activity_model_is_found_without_importing_torch():
    """silero_vad's __init__ imports torch: locating its ONNX must not run it (every audio node paid
    seconds and hundreds of MB for it)."""
    code = ("import sys; from emo_perception.core.vad import VoiceActivity; VoiceActivity(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stdout + out.stderr[-2000:]
