"""Real test media that installed packages ship (see ../shared/ml-stack-facts.md)."""
import numpy as np
import pytest

from emo_perception.recordings.sample_media import (SPEECH_DIR, demo_frame, lfw_on_canvas, load_speech,  # noqa: F401
                                              second_person_frame)


def speech_16k(seconds: float | None = None) -> np.ndarray:
    """Real read speech, float32 16 kHz; skips the test where the Debian package is missing."""
    try:
        x = load_speech()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    return x if seconds is None else x[: int(seconds * 16000)]
