"""TensorRT engine planning: which engines the configured nodes load (the builders' own requests and
backend options), and INT8 calibration samples made by the runtime preprocessing from real images
and WAV files. Used by `emo_engine`; needs no TensorRT until an engine is built."""
from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from ..core.audio_buffer import WINDOW_S
from ..core.audio_frontend import SAMPLE_RATE, log_mel, resample
from ..core.face_crop import crop_faces
from ..core.face_detection import HaarFaceDetector
from ..core.face_model_io import face_model_io
from ..inference.model_card import load_card
from ..recordings.sample_media import read_wav
from .build import backend_options, model_requests

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def face_calibration_samples(image_paths, limit: int = 512, card_path=None) -> dict:
    """{"face": (N, 1, 64, 64)} real face crops from images: the runtime crop of OpenCV's Haar boxes (Haar
    needs no inference backend, which is what emo_engine is building; calibration wants typical crops).
    With `card_path`, the crops that card's model takes (an imported model's: core/face_model_io.py)."""
    import cv2

    io = face_model_io(load_card(card_path)) if card_path is not None else None
    detector, crops = HaarFaceDetector(), []
    for path in image_paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)   # OpenCV's conversion, as conversions.py's
        boxes = [d.box for d in detector.detect(rgb)]
        if boxes:
            crops.append(io.crops(rgb, boxes) if io else crop_faces(rgb, boxes))
        if sum(len(c) for c in crops) >= limit:
            break
    if io is None:
        return {"face": np.concatenate(crops)[:limit] if crops else np.zeros((0, 1, 64, 64), np.float32)}
    channels = 1 if io.channels == "grey" else 3
    return {io.input: np.concatenate(crops)[:limit] if crops else np.zeros((0, channels, io.size, io.size), np.float32)}


def audio_calibration_samples(wav_paths, hop_s: float = 0.5, limit: int = 512) -> dict:
    """{"log_mel": (N, 1, 96, 64)} real log-mel windows from 16-bit WAV files at any rate."""
    window, hop, mels = int(WINDOW_S * SAMPLE_RATE), int(hop_s * SAMPLE_RATE), []
    for path in wav_paths:
        x, rate = read_wav(path)
        x = resample(x, rate)
        mels += [log_mel(x[k:k + window]) for k in range(0, len(x) - window + 1, hop)]
        if len(mels) >= limit:
            break
    return {"log_mel": np.stack(mels[:limit])[:, None] if mels else np.zeros((0, 1, 96, 64), np.float32)}


def plan(configs: dict, nodes=None, precision: str | None = None, force: bool = False) -> list:
    """(request, load_model options) for every engine the configured nodes load: the builders' own
    backend_options with the backend set to tensorrt (and the precision, when given)."""
    out = []
    for req in model_requests(configs):
        if nodes and req.node not in nodes:
            continue
        cfg = dataclasses.replace(configs[req.node], backend="tensorrt",
                                  tensorrt_precision=precision or configs[req.node].tensorrt_precision,
                                  force_engine_update=force or configs[req.node].force_engine_update)
        out.append((req, backend_options(cfg, req.max_batch, log=print, image_size=req.image_size,
                                          fp16_only=req.fp16_only)))
    return out


def calibration_for(req, images, wavs) -> dict | None:
    """Calibration samples for one request from the folders given (None: none given for its kind)."""
    if req.inputs == "face crops" and images:
        return face_calibration_samples(sorted(p for p in pathlib.Path(images).iterdir()
                                               if p.suffix.lower() in IMAGE_SUFFIXES), card_path=req.card_path)
    if req.inputs == "log-mel windows" and wavs:
        return audio_calibration_samples(sorted(pathlib.Path(wavs).glob("*.wav")))
    return None
