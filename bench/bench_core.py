"""Per-stage CPU latency of the perception core at batch 1 on 2 threads (ONNX Runtime backend).

Prints JSON. Targets (issue 3): face path for one face on 640x480 <= 30 ms median; audio path
<= 5 ms per 40 ms hop; fusion step <= 1 ms per track.
"""
import json
import sys
import tempfile

import cv2
import numpy as np
import torch
from skimage import data

from common import MODELS, export_random_models, time_ms

from emo_perception.core.audio_buffer import WINDOW_S
from emo_perception.core.audio_frontend import log_mel
from emo_perception.core.face_crop import crop_faces
from emo_perception.core.face_detection import HaarFaceDetector
from emo_perception.core.fusion_stream import FusionStreams, model_step
from emo_perception.core.vad import VoiceActivity
from emo_perception.inference import load_model


def main():
    torch.set_num_threads(2)
    cards = export_random_models(tempfile.mkdtemp())
    teacher = load_model(MODELS / "expression_teacher.json", "onnxruntime", threads=2)
    student = load_model(cards["face_encoder"], "onnxruntime", threads=2)
    audio_enc = load_model(cards["audio_encoder"], "onnxruntime", threads=2)
    fusion = load_model(cards["fusion_gru"], "onnxruntime", threads=2)

    frame = cv2.resize(data.astronaut(), (640, 480))
    detector = HaarFaceDetector()
    box = detector.detect(frame)[0].box
    crop = crop_faces(frame, [box])
    window = np.random.default_rng(0).normal(0, 0.1, int(WINDOW_S * 16000)).astype(np.float32)
    mel = log_mel(window)[None, None]
    vad = VoiceActivity()
    hop = window[:640]

    streams = FusionStreams(model_step(fusion), (2, 128), 256, 128)
    emb_f, emb_a = np.ones(256, np.float32), np.ones(128, np.float32)
    t = [0.0]

    def fuse():
        t[0] += 0.04
        streams.step(t[0], {"f0": emb_f}, emb_a)

    stages = {
        "detector_640x480": time_ms(lambda: detector.detect(frame)),
        "crop": time_ms(lambda: crop_faces(frame, [box])),
        "teacher_encoder": time_ms(lambda: teacher.run({"face": crop})),
        "student_encoder": time_ms(lambda: student.run({"face": crop})),
        "log_mel": time_ms(lambda: log_mel(window)),
        "audio_encoder": time_ms(lambda: audio_enc.run({"log_mel": mel})),
        "vad_hop": time_ms(lambda: vad(hop)),
        "fusion_gru_step": time_ms(fuse),
    }
    stages = {k: round(v, 3) for k, v in stages.items()}
    face_path = stages["detector_640x480"] + stages["crop"] + max(stages["teacher_encoder"], stages["student_encoder"])
    audio_path = stages["log_mel"] + stages["audio_encoder"] + stages["vad_hop"]
    result = {
        "bench": "core_stages_cpu_2_threads_batch1", "backend": "onnxruntime", "median_ms": stages,
        "paths_ms": {"face_path_one_face": round(face_path, 3), "audio_path_per_hop": round(audio_path, 3),
                     "fusion_step_per_track": stages["fusion_gru_step"]},
        "targets_ms": {"face_path_one_face": 30, "audio_path_per_hop": 5, "fusion_step_per_track": 1},
    }
    result["within_target"] = {k: result["paths_ms"][k] <= v for k, v in result["targets_ms"].items()}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
