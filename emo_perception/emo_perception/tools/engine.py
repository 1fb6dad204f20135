"""emo_engine: build (or refresh) a TensorRT engine ahead of time on the robot, into the cache the
nodes use, so the first launch does not wait for it. INT8 calibrates on real inputs:

    emo_engine --model models/expression_teacher.json                       # FP16
    emo_engine --model models/expression_teacher.json --precision int8 --calibrate-images ~/faces/
    emo_engine --model models/audio_encoder.json --precision int8 --calibrate-audio ~/speech_wavs/

Calibration batches go through the same preprocessing as runtime (face_crop / log_mel).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

from ..core.audio_buffer import WINDOW_S
from ..core.audio_frontend import SAMPLE_RATE, log_mel, resample
from ..core.face_crop import crop_faces
from ..core.face_detection import HaarFaceDetector
from ..inference.engine_cache import PRECISIONS
from .media_files import read_wav

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def face_calibration_batches(image_paths, batch: int = 8, limit: int = 512) -> list[np.ndarray]:
    """Real face crops (N, 1, 64, 64) from images, via the runtime detector and crop."""
    import cv2

    detector, crops = HaarFaceDetector(), []
    for path in image_paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        boxes = [d.box for d in detector.detect(rgb)]
        if boxes:
            crops.append(crop_faces(rgb, boxes))
        if sum(len(c) for c in crops) >= limit:
            break
    return _batched(np.concatenate(crops) if crops else np.zeros((0, 1, 64, 64), np.float32), batch)


def audio_calibration_batches(wav_paths, batch: int = 8, hop_s: float = 0.5, limit: int = 512) -> list[np.ndarray]:
    """Real log-mel windows (N, 1, 96, 64) from 16-bit WAV files at any rate."""
    window, hop, mels = int(WINDOW_S * SAMPLE_RATE), int(hop_s * SAMPLE_RATE), []
    for path in wav_paths:
        x, rate = read_wav(path)
        x = resample(x, rate)
        mels += [log_mel(x[k:k + window]) for k in range(0, len(x) - window + 1, hop)]
        if len(mels) >= limit:
            break
    return _batched(np.stack(mels)[:, None] if mels else np.zeros((0, 1, 96, 64), np.float32), batch)


def _batched(x, batch):
    return [x[i:i + batch] for i in range(0, len(x) - batch + 1, batch)]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="emo_engine", description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="model card (.json)")
    ap.add_argument("--precision", default="fp16", choices=PRECISIONS)
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--calibrate-images", help="folder of images with faces (int8, face models)")
    ap.add_argument("--calibrate-audio", help="folder of 16-bit WAV files (int8, audio encoder)")
    a = ap.parse_args(argv)
    from ..inference import ModelFileError, load_card, load_model

    try:
        card = load_card(a.model)
        batches = None
        if a.calibrate_images:
            files = sorted(p for p in pathlib.Path(a.calibrate_images).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            batches = face_calibration_batches(files, a.max_batch)
        elif a.calibrate_audio:
            batches = audio_calibration_batches(sorted(pathlib.Path(a.calibrate_audio).glob("*.wav")), a.max_batch)
        if a.precision == "int8" and batches is not None and not batches:
            raise ValueError("no calibration inputs found (need faces in the images / WAVs of >= 1 s)")
        model = load_model(card.path, "tensorrt", precision=a.precision, batch_range=(1, 1, a.max_batch),
                           cache_dir=a.cache_dir, force_engine_update=True, calibration_batches=batches)
    except ImportError as err:
        print(f"emo_engine: TensorRT is not available here ({err}); run this on the robot (JetPack)", file=sys.stderr)
        return 1
    except (ModelFileError, ValueError, FileNotFoundError) as err:
        print(f"emo_engine: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"engine": str(model.engine_path), "precision": a.precision}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
