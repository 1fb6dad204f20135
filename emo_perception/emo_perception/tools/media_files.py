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


def lfw_on_canvas(crop25: np.ndarray, size: int = 200) -> np.ndarray:
    """A 25x25 lfw_subset crop (float in [0, 1]) upscaled to `size` px on a grey 640x480 RGB canvas:
    a face at HRI distance, the Haar measurement's protocol (tests and bench_detectors)."""
    import cv2

    grey = cv2.resize((crop25 * 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_CUBIC)
    canvas = np.full((480, 640), 128, np.uint8)
    y, x = (480 - size) // 2, (640 - size) // 2
    canvas[y:y + size, x:x + size] = grey
    return np.repeat(canvas[:, :, None], 3, axis=2)


def second_person_frame() -> np.ndarray:
    """640x480 frame with another real face (lfw_subset #3, not smiling) at 120 px: BlazeFace finds this
    tight crop with score 0.86 (0.67 at 200 px: the full-range model prefers faces that are not huge)."""
    from skimage import data

    return lfw_on_canvas(data.lfw_subset()[3], 120)


# The astronaut's face (x, y, w, h) in scikit-image's 512x512 image: OpenCV's Haar box at full resolution.
ASTRONAUT_FACE = (176, 65, 97, 97)


def face_sources() -> list:
    """Real faces to place in scenes, as (RGB image, face box): the astronaut with her head, hair and
    shoulders, then lfw_subset's 100 tight 25x25 crops (the crop is the box; no context around it)."""
    from skimage import data

    x, y, w, h = ASTRONAUT_FACE
    x0, y0 = max(0, x - w), max(0, y - h // 2)
    head = np.ascontiguousarray(data.astronaut()[y0:y + 2 * h, x0:x + 2 * w])
    out = [(head, (x - x0, y - y0, w, h))]
    for crop in data.lfw_subset()[:100]:
        grey = (crop * 255).astype(np.uint8)
        out.append((np.repeat(grey[:, :, None], 3, axis=2), (0, 0, 25, 25)))
    return out


def background(width: int, height: int, name: str = "coffee") -> np.ndarray:
    """A real scene without faces (scikit-image), resized to width x height RGB."""
    import cv2
    from skimage import data

    img = getattr(data, name)()
    if img.dtype != np.uint8:   # masks (bool) and float images in [0, 1]
        img = (img.astype(np.float32) * 255).clip(0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return cv2.resize(np.ascontiguousarray(img[:, :, :3]), (width, height), interpolation=cv2.INTER_AREA)


def place_face(frame: np.ndarray, source, centre, height: float, roll: float = 0.0) -> tuple:
    """Paste a face source (image, face box) into `frame` (in place) so that its face is `height` px
    tall, centred at `centre` and rolled by `roll` degrees (counter-clockwise); returns the face's
    upright box (x, y, w, h) in the frame, the ground truth for recall."""
    import cv2

    img, (fx, fy, fw, fh) = source
    s = height / fh
    m = cv2.getRotationMatrix2D(((fx + fw / 2) * s, (fy + fh / 2) * s), roll, 1.0)
    m[0, 2] += centre[0] - (fx + fw / 2) * s
    m[1, 2] += centre[1] - (fy + fh / 2) * s
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    scaled = cv2.resize(img, (max(1, int(round(img.shape[1] * s))), max(1, int(round(img.shape[0] * s)))),
                        interpolation=interp)
    size = (frame.shape[1], frame.shape[0])
    mask = cv2.warpAffine(np.full(scaled.shape[:2], 255, np.uint8), m, size, flags=cv2.INTER_NEAREST) > 0
    frame[mask] = cv2.warpAffine(scaled, m, size, flags=cv2.INTER_LINEAR)[mask]
    w = fw * s
    return (int(round(centre[0] - w / 2)), int(round(centre[1] - height / 2)), int(round(w)), int(round(height)))


def read_wav(path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV files are supported")
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, w.getnchannels())
        return x.mean(axis=1).astype(np.float32) / 32768.0, w.getframerate()
