"""Per-stage CPU latency of the perception core at batch 1 on 2 threads (ONNX Runtime backend).

Prints JSON. Targets: face path for one face (detect + crop + model) <= 20 ms median on a 1280x720
frame (issue 9; 30 ms on 640x480 before); audio path <= 5 ms per 40 ms hop; fusion step <= 1 ms per
track. `by_frame_size`: what grows with the camera's resolution, the bgr8 conversion (numpy's reversed-
channel copy, used before, vs OpenCV's), the same for a JPEG CompressedImage (decode + numpy's copy,
used before, vs conversions.compressed_image_to_rgb) and the runtime face pipeline on a frame with one face.
"""
import json
import sys
import tempfile

import cv2
import numpy as np
import torch
from sensor_msgs.msg import CompressedImage

from common import MODELS, export_random_models, interleaved, time_ms

from emo_perception.core.audio_buffer import WINDOW_S
from emo_perception.core.audio_frontend import log_mel
from emo_perception.core.face_crop import crop_faces
from emo_perception import conversions
from emo_perception.runtime.build import build_detector, build_face_pipeline
from emo_perception.runtime.config import FaceConfig
from emo_perception.recordings.sample_media import astronaut_head, background, place_face
from emo_perception.core.fusion_stream import FusionStreams, model_step
from emo_perception.core.vad import VoiceActivity
from emo_perception.inference import load_model


def by_frame_size():
    pipeline = build_face_pipeline(FaceConfig())
    fns, stamp = {}, [0.0]

    def process(rgb):
        stamp[0] += 0.1
        pipeline.process(rgb, stamp[0])

    for w, h in ((640, 480), (1280, 720), (1920, 1080)):
        rgb = background(w, h)
        place_face(rgb, astronaut_head(), (w / 2, h * 0.45), h * 0.15, 0)
        msg = conversions.rgb_to_image(rgb, "bgr8")
        bgr = np.frombuffer(msg.data, np.uint8).reshape(h, w, 3)
        fns[f"{w}x{h} bgr8_to_rgb_numpy_before"] = lambda bgr=bgr: np.ascontiguousarray(bgr[:, :, 2::-1])
        fns[f"{w}x{h} bgr8_to_rgb_now"] = lambda msg=msg: conversions.image_to_rgb(msg)
        jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
        fns[f"{w}x{h} jpeg_to_rgb_numpy_before"] = \
            lambda jpeg=jpeg: np.ascontiguousarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[:, :, ::-1])
        fns[f"{w}x{h} jpeg_to_rgb_now"] = \
            lambda c=CompressedImage(format="jpeg", data=jpeg.tobytes()): conversions.compressed_image_to_rgb(c)
        fns[f"{w}x{h} face_pipeline_one_face"] = lambda rgb=rgb: process(rgb)
    return interleaved(fns, reps=20)


def main():
    torch.set_num_threads(2)
    cards = export_random_models(tempfile.mkdtemp())
    teacher = load_model(MODELS / "expression_teacher.json", "onnxruntime", threads=2)
    student = load_model(cards["face_encoder"], "onnxruntime", threads=2)
    audio_enc = load_model(cards["audio_encoder"], "onnxruntime", threads=2)
    fusion = load_model(cards["fusion_gru"], "onnxruntime", threads=2)

    frame = background(1280, 720)
    place_face(frame, astronaut_head(), (640, 330), 100, 10)
    detector = build_detector(FaceConfig())
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
        "detector_1280x720": time_ms(lambda: detector.detect(frame)),
        "crop": time_ms(lambda: crop_faces(frame, [box])),
        "teacher_encoder": time_ms(lambda: teacher.run({"face": crop})),
        "student_encoder": time_ms(lambda: student.run({"face": crop})),
        "log_mel": time_ms(lambda: log_mel(window)),
        "audio_encoder": time_ms(lambda: audio_enc.run({"log_mel": mel})),
        "vad_hop": time_ms(lambda: vad(hop)),
        "fusion_gru_step": time_ms(fuse),
    }
    stages = {k: round(v, 3) for k, v in stages.items()}
    face_path = stages["detector_1280x720"] + stages["crop"] + max(stages["teacher_encoder"], stages["student_encoder"])
    audio_path = stages["log_mel"] + stages["audio_encoder"] + stages["vad_hop"]
    result = {
        "bench": "core_stages_cpu_2_threads_batch1", "backend": "onnxruntime", "median_ms": stages,
        "paths_ms": {"face_path_one_face": round(face_path, 3), "audio_path_per_hop": round(audio_path, 3),
                     "fusion_step_per_track": stages["fusion_gru_step"]},
        "targets_ms": {"face_path_one_face": 20, "audio_path_per_hop": 5, "fusion_step_per_track": 1},
        "by_frame_size": by_frame_size(),
    }
    result["within_target"] = {k: result["paths_ms"][k] <= v for k, v in result["targets_ms"].items()}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
