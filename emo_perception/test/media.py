"""Real test media that installed packages ship (see ../shared/ml-stack-facts.md)."""
import pathlib
import wave

import numpy as np
import pytest

SPEECH_DIR = pathlib.Path("/usr/share/pocketsphinx/test/data/librivox")


def speech_16k(seconds: float | None = None) -> np.ndarray:
    """Real read speech (LibriVox, public domain) from Debian's pocketsphinx-testdata, float32 16 kHz."""
    files = sorted(SPEECH_DIR.glob("*.wav"))
    if not files:
        pytest.skip("Debian package pocketsphinx-testdata not installed (scripts/setup.sh installs it as root)")
    chunks = []
    for f in files:
        with wave.open(str(f)) as w:
            assert w.getframerate() == 16000 and w.getsampwidth() == 2 and w.getnchannels() == 1
            chunks.append(np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768)
    x = np.concatenate(chunks)
    return x if seconds is None else x[: int(seconds * 16000)]
