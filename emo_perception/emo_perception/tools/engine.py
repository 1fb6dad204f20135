"""emo_engine: build the TensorRT engines the nodes will load, ahead of time on the robot, into the
cache the nodes use, so the first launch does not wait. It reads the same params file as the nodes
and asks the runtime which models they load at which batch sizes, so its engines are exactly the ones
the nodes look up. INT8 calibrates on real inputs (through the runtime preprocessing):

    emo_engine                                             # the package YAML's models, its precision
    emo_engine --params-file my.yaml --precision int8 --calibrate-images ~/faces/ --calibrate-audio ~/wavs/
    emo_engine --node face_embedding_node --force          # one node's model, rebuilt
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys

import numpy as np

from ..core.audio_buffer import WINDOW_S
from ..core.audio_frontend import SAMPLE_RATE, log_mel, resample
from ..core.face_crop import crop_faces
from ..core.face_detection import HaarFaceDetector
from ..inference.engine_cache import PRECISIONS
from ..runtime import ConfigError, load_configs
from ..runtime.build import backend_options, model_requests
from ..runtime.config import NODE_CONFIGS
from .media_files import read_wav

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def face_calibration_samples(image_paths, limit: int = 512) -> dict:
    """{"face": (N, 1, 64, 64)} real face crops from images: the runtime crop of OpenCV's Haar boxes (Haar
    needs no inference backend, which is what emo_engine is building; calibration wants typical crops)."""
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
    return {"face": np.concatenate(crops)[:limit] if crops else np.zeros((0, 1, 64, 64), np.float32)}


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
        out.append((req, backend_options(cfg, req.max_batch, log=print, image_size=req.image_size)))
    return out


def calibration_for(req, images, wavs) -> dict | None:
    """Calibration samples for one request from the folders given (None: none given for its kind)."""
    if req.inputs == "face crops" and images:
        return face_calibration_samples(sorted(p for p in pathlib.Path(images).iterdir()
                                               if p.suffix.lower() in IMAGE_SUFFIXES))
    if req.inputs == "log-mel windows" and wavs:
        return audio_calibration_samples(sorted(pathlib.Path(wavs).glob("*.wav")))
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(prog="emo_engine", description=__doc__.splitlines()[0])
    ap.add_argument("--params-file", help="the nodes' params file (default: the package's config/emo_perception.yaml)")
    ap.add_argument("--namespace", default="", help="namespace the nodes run in (for namespaced YAML blocks)")
    ap.add_argument("--node", action="append", choices=tuple(NODE_CONFIGS), help="only this node's model (repeatable)")
    ap.add_argument("--precision", choices=PRECISIONS, help="override the params file's tensorrt_precision")
    ap.add_argument("--force", action="store_true", help="rebuild even if the engine is cached")
    ap.add_argument("--calibrate-images", help="folder of images with faces (int8, face models)")
    ap.add_argument("--calibrate-audio", help="folder of 16-bit WAV files (int8, audio encoder)")
    a = ap.parse_args(argv)
    from ..inference import ModelFileError, load_model

    built = []
    try:
        jobs = plan(load_configs(a.params_file, a.namespace), a.node, a.precision, a.force)
        if not jobs:
            print("emo_engine: the configured nodes load no network models (prior mode, logmel_stats audio): "
                  "nothing to build", file=sys.stderr)
        for req, options in jobs:
            samples = calibration_for(req, a.calibrate_images, a.calibrate_audio)
            if options["precision"] == "int8" and samples is None and req.inputs == "embeddings":
                raise ValueError(f"{req.node}: int8 calibration of the fusion GRU needs embedding sequences, "
                                 "which emo_engine cannot make from media; use fp16 for it")
            model = load_model(req.card_path, "tensorrt", calibration_samples=samples, **options)
            built.append({"node": req.node, "model": str(req.card_path), "engine": str(model.engine_path),
                          "precision": options["precision"], "max_batch": req.max_batch})
            model.release()
    except ImportError as err:
        print(f"emo_engine: TensorRT is not available here ({err}); run this on the robot (JetPack)", file=sys.stderr)
        return 1
    except (ConfigError, ModelFileError, ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"emo_engine: {err}", file=sys.stderr)
        return 1
    print(json.dumps(built))
    return 0


if __name__ == "__main__":
    sys.exit(main())
