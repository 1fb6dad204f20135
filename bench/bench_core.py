"""Per-stage CPU latency of the perception core at batch 1 on 2 threads (ONNX Runtime backend).

Prints JSON. Targets: face path for one face (detect + crop + model) <= 20 ms median on a 1280x720
frame (issue 9; 30 ms on 640x480 before); audio path <= 5 ms per 40 ms hop; fusion step <= 1 ms per
track. `by_frame_size`: what grows with the camera's resolution, the bgr8 conversion (numpy's reversed-
channel copy, used before, vs OpenCV's), the same for a JPEG CompressedImage (decode + numpy's copy,
used before, vs conversions.compressed_image_to_rgb) and the runtime face pipeline on a frame with one face.
`face_landmarks` (issue 24; alone: `python bench/bench_core.py --landmarks`): at 1280x720 with one and two
faces, today's face path (detect + crop + teacher) beside the same with MediaPipe's landmarks + blendshapes
per face, and beside MediaPipe's tracking mode (the landmarks' ROI of the previous frame instead of the
detector), in one interleaved run; target: two faces with landmarks + blendshapes <= 20 ms. With it, per
model, GFLOPs counted from the ONNX graph and a TensorRT latency estimate from them (not a measurement).
`face_models` (issue 22; alone: `python bench/bench_core.py --face-models [--face-model NAME=CARD ...]`): the
runtime face pipeline per face model card, interleaved: the shipped teacher, the student emo_train exports
(the distilled student's architecture) and any card given, e.g. a distilled student and its imported teacher.
"""
import json
import pathlib
import sys
import tempfile

import cv2
import numpy as np
import torch
from sensor_msgs.msg import CompressedImage

from common import MODELS, export_random_models, interleaved, time_ms

from emo_perception.core.audio_buffer import WINDOW_S
from emo_perception.core.audio_frontend import log_mel
from emo_perception.core.blazeface import eye_roll_degrees
from emo_perception.core.face_crop import crop_faces
from emo_perception.core.face_detection import detect_in_regions, region_detector
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


def model_gflops(onnx_path, sizes=None) -> dict:
    """Multiply-adds x 2 of the convolutions (and MatMul/Gemm) and the element count of the other
    operators, from the graph with shapes inferred (dynamic input axes set from `sizes`: batch 1, the
    detector's 576x320 canvas); the number of convolutions (TensorRT fuses each with its bias,
    activation and residual add into about one kernel)."""
    import onnx

    sizes = {"batch": 1, "height": 320, "width": 576, **(sizes or {})}
    model = onnx.load(str(onnx_path))
    for tensor in model.graph.input:
        for d in tensor.type.tensor_type.shape.dim:
            if d.dim_param:
                d.dim_value = sizes[d.dim_param]
    for tensor in model.graph.output:
        tensor.type.tensor_type.ClearField("shape")
    model = onnx.shape_inference.infer_shapes(model)
    g = model.graph
    shapes = {t.name: [d.dim_value for d in t.type.tensor_type.shape.dim]
              for t in list(g.value_info) + list(g.input) + list(g.output)}
    shapes.update({t.name: list(t.dims) for t in g.initializer})
    conv = other = 0.0
    convs = 0
    for node in g.node:
        out = shapes.get(node.output[0])
        if not out:
            continue
        if node.op_type == "Conv":
            w = shapes[node.input[1]]
            conv += 2.0 * float(np.prod(out)) * float(np.prod(w[1:]))
            # the 1x1 depthwise pair tflite_onnx writes for a PRELU is point-wise (fused, not a kernel)
            convs += not node.output[0].startswith(("neg_x", "scaled"))
        elif node.op_type in ("MatMul", "Gemm"):
            conv += 2.0 * float(np.prod(out)) * shapes[node.input[0]][-1]
            convs += 1
        elif node.op_type not in ("Cast", "Identity", "Reshape", "Transpose"):
            other += float(np.prod(out))
    return {"gflops": round((conv + other) / 1e9, 4), "conv_gflops": round(conv / 1e9, 4), "convolutions": convs}


# TensorRT estimate (issue 24; no TensorRT here): a small batch-1 network on a Jetson Orin GPU is bound
# by kernels, not arithmetic. ASSUMED: ~10 us per fused convolution kernel and an effective 1 TFLOP/s
# FP16 (Orin NX 16 GB: ~7 % of its dense FP16 tensor-core peak; depthwise layers use far less).
TRT_US_PER_KERNEL = 10.0
TRT_EFFECTIVE_TFLOPS = 1.0


def tensorrt_estimate_ms(flops: dict) -> float:
    return round(flops["convolutions"] * TRT_US_PER_KERNEL / 1000 + flops["gflops"] / TRT_EFFECTIVE_TFLOPS, 3)


def face_landmark_paths(reps: int = 20) -> dict:
    """Face path at 1280x720, one and two faces: today's vs with landmarks + blendshapes vs tracked."""
    from emo_perception.core import face_landmarks as fl

    detector = build_detector(FaceConfig())
    teacher = load_model(MODELS / "expression_teacher.json", "onnxruntime", threads=2)
    lm_model = load_model(MODELS / "face_landmarks_detector.json", "onnxruntime", threads=2)
    bs_model = load_model(MODELS / "face_blendshapes.json", "onnxruntime", threads=2)
    landmarker = fl.FaceLandmarker(lm_model, bs_model)
    region = region_detector(detector)
    fns = {}
    for n in (1, 2):
        frame = background(1280, 720)
        for centre, roll in [((420, 330), 10), ((860, 360), -10)][:n]:
            place_face(frame, astronaut_head(), centre, 130, roll)
        found = detector.detect(frame)
        assert len(found) == n, f"{len(found)} faces found, {n} placed"
        rois = [f.next_roi() for f in landmarker.run(frame, [fl.roi_from_detection(d.box, d.keypoints) for d in found])]

        def today(frame=frame, n=n):
            dets = detector.detect(frame)[:n]
            rolls = [eye_roll_degrees(d.keypoints) for d in dets]
            teacher.run({"face": crop_faces(frame, [d.box for d in dets], rolls=rolls)})
            return dets

        def with_landmarks(frame=frame, n=n):
            dets = today(frame, n)
            landmarker.run(frame, [fl.roi_from_detection(d.box, d.keypoints) for d in dets])

        def tracked(frame=frame, boxes=[d.box for d in found], rois=rois):
            # MediaPipe's mode: the previous frame's landmarks give the ROIs; no detector while they hold
            faces = landmarker.run(frame, rois)
            teacher.run({"face": crop_faces(frame, boxes, rolls=[np.degrees(f.roi.rotation) for f in faces])})

        def followed(frame=frame, boxes=[d.box for d in found]):
            # detect_every's frames in between: BlazeFace only around each track, then the landmarker
            dets = [d for d in detect_in_regions(region, frame, boxes) if d is not None]
            teacher.run({"face": crop_faces(frame, [d.box for d in dets],
                                            rolls=[eye_roll_degrees(d.keypoints) for d in dets])})
            landmarker.run(frame, [fl.roi_from_detection(d.box, d.keypoints) for d in dets])

        fns[f"{n}_face today (detect + crop + teacher)"] = today
        fns[f"{n}_face with landmarks + blendshapes"] = with_landmarks
        fns[f"{n}_face tracked: landmarks' ROI, no detector"] = tracked
        fns[f"{n}_face followed: region detector + landmarks (detect_every, in between)"] = followed
    roi = rois[0]
    crop = fl.crop_roi(frame, roi)[None]
    pts = fl.blendshape_input(landmarker.run(frame, [roi])[0].landmarks)
    boxes2 = [d.box for d in found]
    fns["stage detector_1280x720"] = lambda: detector.detect(frame)
    fns["stage region detector, 1 face"] = lambda: detect_in_regions(region, frame, boxes2[:1])
    fns["stage teacher, 2 faces"] = lambda: teacher.run({"face": crop_faces(frame, boxes2)})
    fns["stage roi_crop_256"] = lambda: fl.crop_roi(frame, roi)
    fns["stage face_landmarks_detector"] = lambda: lm_model.run({"image": crop})
    crops2 = np.concatenate([crop] * 2)
    fns["stage face_landmarks_detector, 2 faces in one call"] = lambda: lm_model.run({"image": crops2})
    fns["stage face_blendshapes"] = lambda: bs_model.run({"points": pts})
    timed = interleaved(fns, reps=reps)
    flops = {name: model_gflops(MODELS / f"{name}.onnx") for name in
             ("face_landmarks_detector", "face_blendshapes", "blazeface_full_range", "expression_teacher")}
    for name, f in flops.items():
        f["tensorrt_estimate_ms"] = tensorrt_estimate_ms(f)
    return {"frame": "1280x720, astronaut faces 130 px high", "backend": "onnxruntime cpu, 2 threads",
            "median_ms": timed, "target_ms": {"2_face with landmarks + blendshapes": 20},
            "within_target": timed["2_face with landmarks + blendshapes"] <= 20,
            "models": flops, "tensorrt_estimate_assumptions": {
                "us_per_fused_convolution": TRT_US_PER_KERNEL, "effective_tflops_fp16": TRT_EFFECTIVE_TFLOPS,
                "note": "an estimate for a Jetson Orin GPU from the counted FLOPs, not a measurement"}}


def face_model_paths(cards: dict, reps: int = 20) -> dict:
    """The runtime face pipeline (build_face_pipeline: BlazeFace + crop + the model + what the card says
    to read) on a 1280x720 frame with one face, per face model card, interleaved in one run (issue 22:
    the distilled student beside the shipped teacher, and any imported model given with --face-model)."""
    frame = background(1280, 720)
    place_face(frame, astronaut_head(), (640, 330), 100, 10)
    fns, clock = {}, [0.0]
    for name, card in cards.items():
        pipeline = build_face_pipeline(FaceConfig(face_model=str(card), threads=2))

        def run(pipeline=pipeline):
            clock[0] += 0.05
            assert len(pipeline.process(frame, clock[0]).faces) == 1
        fns[name] = run
    return {"frame": "1280x720, one face", "median_ms": interleaved(fns, reps=reps)}


def _face_model_args(argv) -> dict:
    """--face-model NAME=CARD (repeatable): extra face models for face_model_paths."""
    out = {}
    for k, arg in enumerate(argv):
        if arg == "--face-model" and k + 1 < len(argv):
            name, _, card = argv[k + 1].rpartition("=")
            out[name or pathlib.Path(card).stem] = card
    return out


def landmark_tracking_recall(frames: int = 30) -> dict:
    """Recall and ms per frame of the face path with landmarks: the detector on every frame vs MediaPipe's
    tracking (core/face_landmarks.LandmarkTracking, detect_every 3 and 0). Two astronaut faces (130 px,
    1280x720) moving back and forth over 300 px at 0-64 px per frame, a third coming into view half-way.
    Found: a face whose landmarks' mean lies inside its true box."""
    import time

    from emo_perception.core import face_landmarks as fl

    detector = build_detector(FaceConfig())
    landmarker = fl.FaceLandmarker(load_model(MODELS / "face_landmarks_detector.json", "onnxruntime", threads=2),
                                   load_model(MODELS / "face_blendshapes.json", "onnxruntime", threads=2))
    inside = lambda p, b: b[0] <= p[0] <= b[0] + b[2] and b[1] <= p[1] <= b[1] + b[3]  # noqa: E731
    sweep = lambda d: 300 - abs(d % 600 - 300)     # noqa: E731  (0 -> 300 -> 0 px: back and forth)

    def every_frame(frame):
        found = detector.detect(frame)
        return [f for f in landmarker.run(frame, [fl.roi_from_detection(d.box, d.keypoints) for d in found])
                if f.present]

    out = {}
    for speed in (0, 8, 16, 32, 64):
        clip = []
        for k in range(frames):
            frame, boxes = background(1280, 720), []
            for x0, y in ((150, 300), (600, 420)):
                boxes.append(place_face(frame, astronaut_head(), (x0 + sweep(speed * k), y), 130, 0))
            if k >= frames // 2:
                boxes.append(place_face(frame, astronaut_head(), (1120, 250), 130, 0))
            clip.append((frame, boxes))
        row = {}
        for name, every in {"detector every frame": None, "tracking, detect_every 3": 3,
                            "tracking, detect_every 0": 0}.items():
            tracking = None if every is None else fl.LandmarkTracking(detector, landmarker, detect_every=every)
            step = every_frame if tracking is None else tracking.step
            found = placed = 0
            t0 = time.perf_counter()
            for frame, boxes in clip:
                centres = [f.landmarks[:, :2].mean(0) for f in step(frame)]
                placed += len(boxes)
                found += sum(any(inside(c, b) for c in centres) for b in boxes)
            ms = (time.perf_counter() - t0) * 1000 / len(clip)
            row[name] = {"recall": round(found / placed, 3), "ms_per_frame": round(ms, 1),
                         "detector_runs": len(clip) if tracking is None else tracking.detector_runs}
        out[f"{speed}_px_per_frame"] = row
    return out


def main():
    if "--face-models" in sys.argv[1:] or "--face-model" in sys.argv[1:]:
        # the student as emo_train exports it (random weights: the time does not depend on them) and the
        # shipped teacher, beside the cards given, e.g. a distilled student and its imported teacher
        cards = {"teacher": MODELS / "expression_teacher.json",
                 "student": export_random_models(tempfile.mkdtemp())["face_encoder"], **_face_model_args(sys.argv)}
        print(json.dumps({"bench": "face_path_per_face_model", "face_models": face_model_paths(cards)}, indent=1))
        return 0
    if "--landmarks" in sys.argv[1:]:
        print(json.dumps({"bench": "face_path_with_landmarks", "face_landmarks": face_landmark_paths(),
                          "face_landmarks_tracking": landmark_tracking_recall()}, indent=1))
        return 0
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
        "face_landmarks": face_landmark_paths(),
        "face_landmarks_tracking": landmark_tracking_recall(),
        "face_models": face_model_paths({"teacher": MODELS / "expression_teacher.json",
                                         "student": cards["face_encoder"]}),
    }
    result["within_target"] = {k: result["paths_ms"][k] <= v for k, v in result["targets_ms"].items()}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
