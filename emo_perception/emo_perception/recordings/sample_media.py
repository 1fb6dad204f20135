"""Real media that installed packages ship, read without ROS: the demo's face and speech, WAV files.

(Used by the demo, the tests, the benchmarks and emo_engine's calibration; no rclpy here.)
"""
from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=1)
def astronaut_head() -> tuple:
    """(RGB image, face box) of scikit-image's astronaut with her head, hair and shoulders: a real face
    in context. Cached and read-only: scenes paste it many times."""
    from skimage import data

    x, y, w, h = ASTRONAUT_FACE
    x0, y0 = max(0, x - w), max(0, y - h // 2)
    head = np.ascontiguousarray(data.astronaut()[y0:y + 2 * h, x0:x + 2 * w])
    head.setflags(write=False)
    return head, (x - x0, y - y0, w, h)


def face_sources() -> list:
    """Real faces to place in scenes, as (RGB image, face box): astronaut_head(), then lfw_subset's 100
    tight 25x25 crops (the crop is the box; no context around it)."""
    from skimage import data

    out = [astronaut_head()]
    for crop in data.lfw_subset()[:100]:
        grey = (crop * 255).astype(np.uint8)
        out.append((np.repeat(grey[:, :, None], 3, axis=2), (0, 0, 25, 25)))
    return out


# BlazeFace's mouth keypoint on the astronaut, in scikit-image's 512x512 image.
ASTRONAUT_MOUTH = (221, 149)


def talking_head(opening: float, mirrored: bool = False, smile: float = 0.0):
    """astronaut_head() with the lower lip and jaw moved down by `opening`
    (0 closed .. 1: 12 % of the face height), as a (image, face box) source: lips that move with
    speech, for the speaker attribution measurement. `mirrored`: a second person, seen mirrored.
    `smile` (-1..1) lifts (positive) or pulls down the mouth corners by up to 9 % of the face height:
    the valence cue of emo_train's generated set (training/synthetic.py)."""
    import cv2

    img, (fx, fy, fw, fh) = astronaut_head()
    x0, y0 = ASTRONAUT_FACE[0] - fx, ASTRONAUT_FACE[1] - fy     # head crop origin in the 512 image
    mx, my = ASTRONAUT_MOUTH[0] - x0, ASTRONAUT_MOUTH[1] - y0
    if opening > 0 or smile != 0:
        ys, xs = np.mgrid[0:img.shape[0], 0:img.shape[1]].astype(np.float32)
        below = 1.0 / (1.0 + np.exp(-(ys - my) / (0.02 * fh)))          # the upper lip stays
        jaw = np.exp(-((xs - mx) ** 2 / (2 * (0.22 * fh) ** 2) + (ys - my - 0.3 * fh) ** 2 / (2 * (0.3 * fh) ** 2)))
        map_y = ys - 0.12 * fh * float(opening) * below * jaw
        if smile != 0:
            spot = lambda cx: np.exp(-((xs - cx) ** 2 / (2 * (0.07 * fh) ** 2)   # noqa: E731
                                       + (ys - my) ** 2 / (2 * (0.06 * fh) ** 2)))
            corners = spot(mx - 0.17 * fh) + spot(mx + 0.17 * fh)
            map_y += 0.09 * fh * float(smile) * (corners - 0.5 * spot(mx))
        img = cv2.remap(img, xs, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if mirrored:
        return np.ascontiguousarray(img[:, ::-1]), (img.shape[1] - fx - fw, fy, fw, fh)
    return img, (fx, fy, fw, fh)


def speech_envelope(speech: np.ndarray, fps: float, rate: int = 16000) -> np.ndarray:
    """Per video frame, the speech's loudness mapped to a mouth opening in [0, 1] (0 in pauses; the
    35 dB below the loudest frame map linearly, so the lips keep moving with the syllables instead of
    staying wide open through loud stretches)."""
    hop = int(rate / fps)
    rms = np.array([np.sqrt(np.mean(speech[k:k + hop] ** 2) + 1e-12) for k in range(0, len(speech) - hop + 1, hop)])
    db = 20 * np.log10(rms)
    return np.clip((db - (db.max() - 35)) / 35, 0, 1)


def two_person_clip(seconds: float = 8.0, fps: float = 15.0, size=(1280, 720), seed: int = 0):
    """Two real faces side by side; the left one speaks the real speech (its lips follow the speech's
    loudness), the right one listens. Both heads move (a random walk of a few pixels, a slow roll)
    and the camera adds noise, so a still mouth is not the only thing that separates them.
    Returns (RGB frames, 16 kHz speech float32, index of the speaker: 0 = left)."""
    rng = np.random.default_rng(seed)
    speech = load_speech()[: int(seconds * 16000)]
    opening = speech_envelope(speech, fps)
    n = min(len(opening), int(seconds * fps))
    walk = np.clip(np.cumsum(rng.normal(0, 1.5, (n, 2, 2)), axis=0), -8, 8)
    frames = []
    base = background(*size)
    for k in range(n):
        frame = base.copy()
        for person in (0, 1):
            centre = (size[0] * (0.3 + 0.4 * person) + walk[k, person, 0], size[1] * 0.45 + walk[k, person, 1])
            roll = 4 * np.sin(2 * np.pi * k / fps / (3 + person))
            source = talking_head(opening[k] if person == 0 else 0.0, mirrored=person == 1)
            place_face(frame, source, centre, size[1] * 0.16, roll)
        noisy = frame.astype(np.float32) + rng.normal(0, 3, frame.shape)
        frames.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return frames, speech, 0


# The demo's expression schedule: the talking astronaut's mouth corners go from a smile (+1) to pulled
# down (-1) and back once per SMILE_PERIOD_S, so the report's curves show the estimate following a face.
SMILE_PERIOD_S = 4.0


def demo_smile(t):
    """The demo's smile (-1..1) at `t` seconds (talking_head's `smile`)."""
    return np.cos(2 * np.pi * np.asarray(t, dtype=float) / SMILE_PERIOD_S)


SECOND_PERSON_SHIFT = -180    # px: second_person_frame's face from the centre to x ~140 (the first is at ~475)


def moving_demo_frames(seconds: float, fps: float, speech: np.ndarray, first_share: float = 2 / 3) -> list:
    """The demo's 640x480 RGB frames: for the first `first_share` of the time the astronaut speaks
    (talking_head: her jaw follows the speech's loudness, her mouth corners follow demo_smile) on a real
    scene; then a second real face (second_person_frame), still, on the left. Both drift a few pixels
    per frame as a hand-held camera would. The second face is 2.6 face widths from where the first was:
    nearer, the tracker's match by predicted centre could (rightly, for one camera) take it for the first
    person moving, when frames between them are skipped under load."""
    opening = speech_envelope(speech, fps)
    n = int(round(seconds * fps))
    first = int(round(n * first_share))
    scene, other = background(640, 480), second_person_frame()
    frames = []
    for k in range(n):
        if k < first:
            frame = scene.copy()
            head = talking_head(float(opening[min(k, len(opening) - 1)]), smile=float(demo_smile(k / fps)))
            place_face(frame, head, (470 + 2 * (k % 6), 200), 130)
        else:
            frame = np.roll(other, SECOND_PERSON_SHIFT + 2 * (k % 6), axis=1)
        frames.append(frame)
    return frames


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


def write_wav(path, audio: np.ndarray, rate: int = 16000):
    """Mono float audio in [-1, 1] as a 16-bit PCM WAV."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
