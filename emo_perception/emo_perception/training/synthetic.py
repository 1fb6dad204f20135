"""A small data set that can be learned from, generated from real media: the lab layout (and the
RECOLA layout) with valence/arousal targets defined by cues put into the recordings.

Per session, the targets are piecewise constant levels (3-4.5 s segments, each level drawn
uniformly in [-0.8, 0.8] for valence and arousal independently) joined by 0.5 s cosine ramps,
annotated at 25 Hz. The cues:
- valence -> the face: the astronaut's real face (scikit-image, public domain) with its mouth
  corners lifted (positive) or pulled down (negative) by up to 9 % of the face height, in
  proportion to valence; the jaw opens with the speech's loudness (talking_head's warp);
- arousal -> the voice: Debian's espeak-ng at speed 130 + 60a words/min, pitch 50 + 30a and
  amplitude 100 + 60a (a = arousal), or the real read speech of pocketsphinx-testdata at a gain of
  12a dB; and the head's motion: its random walk is (1 + a) x 2 px per frame.
A bystander (an lfw_subset face, public domain) is in view for a third of some sessions (unlabeled
faces for distillation, and a second track the annotated person's track must be told from).
The camera: a real background scene, sensor noise, 480x360 at 10 fps; the face 60-85 px tall.
"""
from __future__ import annotations

import pathlib
import shutil
import subprocess
import tempfile

import numpy as np

from ..core.alignment import PERIOD
from ..recordings.media import Audio, write_clip
from ..recordings.sample_media import (background, face_sources, load_speech, place_face, read_wav, speech_envelope,
                                 talking_head, write_wav)
from .config import GenerateConfig

RATE = 16000
FPS = 10.0
SIZE = (480, 360)
SCENES = ("coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "coins")
SENTENCES = ("The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
             "It's easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
             "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
             "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
             "Four hours of steady work faced us.", "A large size in stockings is hard to sell.")


def targets(seconds: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """(times at 25 Hz, (T, 2) valence/arousal) and the segment levels."""
    t = np.arange(0, seconds + 1e-9, PERIOD)
    bounds, levels = [0.0], []
    while bounds[-1] < seconds:
        bounds.append(bounds[-1] + rng.uniform(3.0, 4.5))
        levels.append(rng.uniform(-0.8, 0.8, 2))
    va = np.zeros((len(t), 2))
    for i, lv in enumerate(levels):
        va[t >= bounds[i]] = lv
    ramp = int(0.5 / PERIOD)                # steps in half a second
    kernel = np.hanning(ramp * 2 + 1)
    kernel /= kernel.sum()
    padded = np.pad(va, ((ramp, ramp), (0, 0)), mode="edge")
    va = np.stack([np.convolve(padded[:, j], kernel, mode="valid") for j in range(2)], 1)
    return t, va


def espeak(text: str, arousal: float) -> np.ndarray:
    """Speech from espeak-ng at the arousal's speed, pitch and amplitude, 16 kHz float32."""
    import soxr

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FileNotFoundError("espeak-ng is not installed (Debian: apt-get install espeak-ng; scripts/setup.sh does)")
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "s.wav"
        subprocess.run([exe, "-v", "en", "-s", str(int(130 + 60 * arousal)), "-p", str(int(50 + 30 * arousal)),
                        "-a", str(int(100 + 60 * arousal)), "-w", str(path), text], check=True, capture_output=True)
        x, rate = read_wav(path)
    return soxr.resample(x, rate, RATE).astype(np.float32)


def voice(t: np.ndarray, va: np.ndarray, real: bool, rng) -> np.ndarray:
    """The session's audio: per 25 Hz step the arousal sets the voice; built segment by segment."""
    n = int(round(t[-1] * RATE)) + RATE // 25
    out = np.zeros(n, np.float32)
    speech = load_speech() if real else None
    # segments where the arousal target is steady: one utterance per 1.5 s piece
    piece = int(1.5 * RATE)
    for k in range(0, n, piece):
        a = float(np.interp(k / RATE + 0.75, t, va[:, 1]))
        if real:
            start = int(rng.integers(0, len(speech) - piece))
            chunk = speech[start:start + piece] * 10 ** (12 * a / 20)
        else:
            chunk = espeak(str(rng.choice(SENTENCES)), a)
            chunk = chunk[int(0.05 * RATE):][:piece]          # espeak's leading silence
        out[k:k + len(chunk)] = chunk[: n - k]
    return np.clip(out, -1, 1)


def bystander(index: int):
    """lfw_subset face `index` as a face source (face_sources() holds the astronaut first)."""
    return face_sources()[1 + index]


def session(seconds: float, seed: int, real_speech: bool):
    """(RGB frames at FPS, 16 kHz audio, annotation times, (T, 2) targets)."""
    rng = np.random.default_rng(seed)
    t, va = targets(seconds, rng)
    audio = voice(t, va, real_speech, rng)
    opening = speech_envelope(audio, FPS)
    base = background(*SIZE, SCENES[seed % len(SCENES)])
    height = rng.uniform(60, 85)
    centre = np.array([rng.uniform(0.35, 0.65) * SIZE[0], rng.uniform(0.42, 0.55) * SIZE[1]])
    mirrored = bool(seed % 2)
    other = bystander(int(rng.integers(0, 100))) if seed % 3 == 0 else None
    other_from = rng.uniform(0, 0.6)
    frames, pos = [], np.zeros(2)
    n = int(seconds * FPS)
    for k in range(n):
        tk = k / FPS
        v, a = (float(np.interp(tk, t, va[:, j])) for j in range(2))
        pos = np.clip(pos + rng.normal(0, (1 + a) * 2.0, 2), -20, 20)
        frame = base.copy()
        head = talking_head(float(opening[min(k, len(opening) - 1)]), mirrored, smile=v)
        place_face(frame, head, centre + pos, height, roll=3 * np.sin(tk))
        if other is not None and other_from * n <= k < (other_from + 0.33) * n:
            place_face(frame, other, (0.12 * SIZE[0] if centre[0] > SIZE[0] / 2 else 0.88 * SIZE[0], 0.5 * SIZE[1]),
                       60, 0.0)
        noisy = frame.astype(np.float32) + rng.normal(0, 3, frame.shape)
        frames.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return frames, audio, t, va


def _pcm(audio: np.ndarray) -> np.ndarray:
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16).reshape(-1, 1)


def write_arff(path, name: str, t: np.ndarray, values: np.ndarray):
    """RECOLA's AVEC 2016 gold-standard ARFF: Instance_name, frameTime (s), GoldStandard."""
    lines = ["@relation GoldStandard", "", "@attribute Instance_name string", "@attribute frameTime numeric",
             "@attribute GoldStandard numeric", "", "@data"]
    lines += [f"{name},{ti:.2f},{v:.6f}" for ti, v in zip(t, values)]
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(path).write_text("\n".join(lines) + "\n")


_SIZES = GenerateConfig()     # the defaults: `emo_train generate` sets them (training/config.py)


def _lab_session(lab: pathlib.Path, i: int, seconds: float):
    name = f"session_{i:02d}"
    frames, audio, t, va = session(seconds, seed=i, real_speech=i % 2 == 1)
    folder = lab / name
    folder.mkdir(exist_ok=True)
    if i % 4 == 2:     # the lab layout's other form: silent video + a separate WAV
        write_clip(folder / "video.mp4", frames, FPS)
        write_wav(folder / "audio.wav", audio)
    else:
        write_clip(folder / "video.mp4", frames, FPS, Audio(_pcm(audio), RATE))
    rows = ["time,valence,arousal"] + [f"{ti:.2f},{v:.5f},{a:.5f}" for ti, (v, a) in zip(t, va)]
    (folder / "annotations.csv").write_text("\n".join(rows) + "\n")


def _recola_session(recola: pathlib.Path, j: int, recola_sessions: int, seconds: float):
    name = f"{'train' if j < recola_sessions // 2 else 'dev'}_{j % max(1, recola_sessions // 2) + 1}"
    frames, audio, t, va = session(seconds, seed=100 + j, real_speech=j % 2 == 1)
    (recola / "recordings_video").mkdir(parents=True, exist_ok=True)
    (recola / "recordings_audio").mkdir(parents=True, exist_ok=True)
    write_clip(recola / "recordings_video" / f"{name}.mp4", frames, FPS)
    write_wav(recola / "recordings_audio" / f"{name}.wav", audio)
    for k, dim in enumerate(("valence", "arousal")):
        write_arff(recola / "ratings_gold_standard" / dim / f"{name}.arff", name, t, va[:, k])


def generate(out, sessions: int = _SIZES.sessions, seconds: float = _SIZES.seconds,
             recola_sessions: int = _SIZES.recola_sessions, val_every: int = _SIZES.val_every,
             jobs: int = _SIZES.jobs) -> dict:
    """Write <out>/lab (sessions; every `val_every`-th held out in splits.csv) and <out>/recola
    (train_*/dev_* halves). Returns what was written. Each session is drawn from its own seed, so
    `jobs` processes (one session each at a time) write the same sessions as one."""
    out = pathlib.Path(out)
    lab, recola = out / "lab", out / "recola"
    lab.mkdir(parents=True, exist_ok=True)
    work = [(_lab_session, (lab, i, seconds)) for i in range(sessions)] + \
        [(_recola_session, (recola, j, recola_sessions, seconds)) for j in range(recola_sessions)]
    if jobs > 1:
        import concurrent.futures
        import multiprocessing

        # spawn: the caller may hold threads (ONNX Runtime, torch) that a forked child would inherit locked
        with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for done in [pool.submit(fn, *args) for fn, args in work]:
                done.result()
    else:
        for fn, args in work:
            fn(*args)
    splits = ["session,split"] + [f"session_{i:02d},{'val' if i % val_every == val_every - 1 else 'train'}"
                                  for i in range(sessions)]
    (lab / "splits.csv").write_text("\n".join(splits) + "\n")
    return {"lab": str(lab), "lab_sessions": sessions, "lab_val_sessions": sum(1 for s in splits if s.endswith(",val")),
            "recola": str(recola) if recola_sessions else None, "recola_sessions": recola_sessions, "seconds": seconds}
