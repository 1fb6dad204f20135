"""Real media that installed packages ship, read without ROS: the demo's face and speech, WAV files.

(Used by the demo, the tests, the benchmarks and emo_engine's calibration; no rclpy here.)
"""
from __future__ import annotations

import pathlib
import wave

import numpy as np


# Real read speech (LibriVox, public domain) from Debian's pocketsphinx-testdata, 16 kHz mono.
SPEECH_DIR = pathlib.Path("/usr/share/pocketsphinx/test/data/librivox")


def load_speech() -> np.ndarray:
    """All of SPEECH_DIR's WAVs as one float32 16 kHz signal; FileNotFoundError if none are installed."""
    wavs = sorted(SPEECH_DIR.glob("*.wav"))
    if not wavs:
        raise FileNotFoundError(f"no speech WAVs in {SPEECH_DIR}: install Debian's pocketsphinx-testdata "
                                "(scripts/setup.sh does)")
    return np.concatenate([read_wav(w)[0] for w in wavs])


def demo_frame() -> np.ndarray:
    """640x480 RGB camera frame with one real face (scikit-image's astronaut, public domain)."""
    from skimage import data

    return np.ascontiguousarray(np.pad(data.astronaut(), ((0, 0), (64, 64), (0, 0)))[:480, :640])


def lfw_on_canvas(crop25: np.ndarray) -> np.ndarray:
    """A 25x25 lfw_subset crop (float in [0, 1]) upscaled to 200 px on a grey 640x480 RGB canvas:
    a face at HRI distance, the detector measurement's protocol (tests and bench_detectors)."""
    import cv2

    grey = cv2.resize((crop25 * 255).astype(np.uint8), (200, 200), interpolation=cv2.INTER_CUBIC)
    canvas = np.full((480, 640), 128, np.uint8)
    canvas[140:340, 220:420] = grey
    return np.repeat(canvas[:, :, None], 3, axis=2)


def read_wav(path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV files are supported")
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels())
        return x.mean(axis=1).astype(np.float32) / 32768.0, w.getframerate()
