"""Face detectors compared on real faces in HRI-sized camera frames: recall grid, false positives,
CPU time per frame (2 threads), face-path time, and the effect of roll-levelled crops. Writes JSON.

Faces: scikit-image's astronaut (a real face with hair and shoulders) and lfw_subset's 100 real
faces (tight 25x25 crops, no context), placed into 1280x720 and 1920x1080 frames over a real scene
(scikit-image's coffee) at face heights 24..320 px (320: a person ~0.5 m from a 720p camera), rolls
-30..+30 degrees, one to three faces side by side, then JPEG-coded at quality 30 and 90. Non-faces:
17 real scikit-image scenes and lfw_subset's 100 non-face patches placed like faces. Hit: a detection
whose centre lies in the true face box and whose height is within a factor of two of it (one detection
per face).

    python bench_detectors.py [--quick] [--out results/detectors.json]
"""
import argparse
import importlib.util
import json
import os
import pathlib
import statistics
import time

import cv2
import numpy as np
import torch
from torch import nn

from common import MODELS, interleaved

from emo_perception.core.face_crop import crop_faces
from emo_perception.core.face_detection import BlazeFaceDetector, Detection, HaarFaceDetector
from emo_perception.inference import load_model
from emo_perception.recordings.sample_media import astronaut_head, background, face_sources, place_face


class _PNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(self.pool1(self.prelu1(self.conv1(x)))))))
        return torch.softmax(self.conv4_1(x), 1), self.conv4_2(x)


class _RNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)

    def forward(self, x):
        x = self.pool(self.prelu1(self.conv1(x)))
        x = self.pool(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).reshape(x.shape[0], -1)  # Caffe weight order
        x = self.prelu4(self.dense4(x))
        return torch.softmax(self.dense5_1(x), 1), self.dense5_2(x)


class _ONet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)
        self.pool3, self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True), nn.MaxPool2d(2, 2, ceil_mode=True)

    def forward(self, x):
        x = self.pool3(self.prelu1(self.conv1(x)))
        x = self.pool3(self.prelu2(self.conv2(x)))
        x = self.pool2(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu5(self.dense5(x))
        return torch.softmax(self.dense6_1(x), 1), self.dense6_2(x)


def _nms(boxes, scores, thresh, mode="union"):
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order, keep = scores.argsort()[::-1], []
    while order.size:
        i = order[0]
        keep.append(i)
        w = np.maximum(0, np.minimum(x2[i], x2[order[1:]]) - np.maximum(x1[i], x1[order[1:]]) + 1)
        h = np.maximum(0, np.minimum(y2[i], y2[order[1:]]) - np.maximum(y1[i], y1[order[1:]]) + 1)
        inter = w * h
        denom = np.minimum(area[i], area[order[1:]]) if mode == "min" else area[i] + area[order[1:]] - inter
        order = order[1:][inter / denom <= thresh]
    return np.array(keep, int)


def _square(b):
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    side = np.maximum(w, h)
    b[:, 0] += w / 2 - side / 2
    b[:, 1] += h / 2 - side / 2
    b[:, 2:4] = b[:, :2] + side[:, None]
    return b


def _regress(b, reg):
    w, h = b[:, 2] - b[:, 0] + 1, b[:, 3] - b[:, 1] + 1
    return np.stack([b[:, 0] + reg[:, 0] * w, b[:, 1] + reg[:, 1] * h, b[:, 2] + reg[:, 2] * w,
                     b[:, 3] + reg[:, 3] * h, b[:, 4]], 1)


class MTCNN:
    name = "mtcnn_facenet_weights"

    def __init__(self, min_face=40, factor=0.709, thresholds=(0.6, 0.7, 0.7)):
        folder = os.path.join(importlib.util.find_spec("facenet_pytorch").submodule_search_locations[0], "data")
        self.nets = []
        for cls, name in [(_PNet, "pnet"), (_RNet, "rnet"), (_ONet, "onet")]:
            net = cls()
            net.load_state_dict(torch.load(os.path.join(folder, f"{name}.pt"), map_location="cpu", weights_only=True))
            self.nets.append(net.eval())
        self.min_face, self.factor, self.th = min_face, factor, thresholds

    @staticmethod
    def _tensor(img):
        return torch.from_numpy(((img.astype(np.float32) - 127.5) * 0.0078125).transpose(0, 3, 1, 2).copy())

    def _refine(self, rgb, boxes, size, net, th):
        h, w = rgb.shape[:2]
        crops = []
        for x1, y1, x2, y2 in boxes[:, :4].astype(int):
            pad = max(0, -x1, -y1, x2 - w + 1, y2 - h + 1)
            src = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT) if pad else rgb
            crop = src[y1 + pad:y2 + pad + 1, x1 + pad:x2 + pad + 1]
            crops.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
        with torch.no_grad():
            prob, reg = net(self._tensor(np.stack(crops)))
        score = prob[:, 1].numpy()
        keep = score > th
        out = boxes[keep].copy()
        out[:, 4] = score[keep]
        return out, reg.numpy()[keep]

    def detect(self, rgb):
        h, w = rgb.shape[:2]
        m = 12.0 / self.min_face
        scale, boxes = m, []
        with torch.no_grad():
            while min(h, w) * scale >= 12:
                img = cv2.resize(rgb, (int(np.ceil(w * scale)), int(np.ceil(h * scale))), interpolation=cv2.INTER_AREA)
                prob, reg = self.nets[0](self._tensor(img[None]))
                p, r = prob[0, 1].numpy(), reg[0].numpy()
                ys, xs = np.nonzero(p >= self.th[0])
                if ys.size:
                    b = np.stack([np.floor((2 * xs + 1) / scale), np.floor((2 * ys + 1) / scale),
                                  np.floor((2 * xs + 12) / scale), np.floor((2 * ys + 12) / scale), p[ys, xs]], 1)
                    keep = _nms(b[:, :4], b[:, 4], 0.5)
                    boxes.append(np.concatenate([b[keep], r[:, ys, xs].T[keep]], 1))
                scale *= self.factor
        if not boxes:
            return []
        b = np.concatenate(boxes)
        b = b[_nms(b[:, :4], b[:, 4], 0.7)]
        b = _square(_regress(b[:, :5], b[:, 5:9]))
        for net, size, th, mode in [(self.nets[1], 24, self.th[1], "union"), (self.nets[2], 48, self.th[2], "min")]:
            if not len(b):
                return []
            b, reg = self._refine(rgb, b, size, net, th)
            if not len(b):
                return []
            if mode == "union":
                keep = _nms(b[:, :4], b[:, 4], 0.7)
                b = _square(_regress(b[keep], reg[keep]))
            else:
                b = _regress(b, reg)
                b = b[_nms(b[:, :4], b[:, 4], 0.7, "min")]
        return [((int(x1), int(y1), int(x2 - x1), int(y2 - y1)), float(s)) for x1, y1, x2, y2, s in b]


HEIGHTS = (24, 32, 48, 64, 96, 128, 256, 320)
ROLLS = (-30, -15, 0, 15, 30)
FRAMES = ((1280, 720), (1920, 1080))
QUALITIES = (30, 90)
SCENES = ("coffee", "rocket", "brick", "grass", "gravel", "moon", "page", "text", "clock", "coins", "horse",
          "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel", "chelsea", "cell")


def jpeg(rgb, quality):
    ok, buf = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])


def hits(truth, found):
    """Faces found: greedy one-to-one, centre inside the true box, height within 2x."""
    used, n = set(), 0
    for x, y, w, h in truth:
        for k, (bx, by, bw, bh) in enumerate(found):
            cx, cy = bx + bw / 2, by + bh / 2
            if k not in used and x <= cx <= x + w and y <= cy <= y + h and h / 2 <= bh <= 2 * h:
                used.add(k)
                n += 1
                break
    return n


def grid(sources, frames, heights, rolls, qualities):
    """(frame size, height, roll, quality, frame, true boxes): 1..3 faces side by side where they fit."""
    k = 0
    for size in frames:
        base = background(*size)
        for h in heights:
            for roll in rolls:
                for n in (1, 2, 3):
                    if n * 2.2 * h > size[0]:
                        continue
                    frame, truth = base.copy(), []
                    for i in range(n):
                        centre = ((i + 1) * size[0] / (n + 1), size[1] / 2 + (k % 5 - 2) * size[1] / 12)
                        truth.append(place_face(frame, sources[k % len(sources)], centre, h, roll))
                        k += 1
                    for q in qualities:
                        yield size, h, roll, q, jpeg(frame, q), truth


def non_faces(size=(1280, 720)):
    for name in SCENES:
        yield background(*size, name)
    from skimage import data

    base = background(*size)
    for i, patch in enumerate(data.lfw_subset()[100:]):
        grey = np.repeat((patch * 255).astype(np.uint8)[:, :, None], 3, axis=2)
        frame = base.copy()
        place_face(frame, (grey, (0, 0, 25, 25)), (size[0] / 2, size[1] / 2), HEIGHTS[i % len(HEIGHTS)] * 1.5)
        yield frame


def detectors(quick):
    bf_model = load_model(MODELS / "blazeface_full_range.json", "onnxruntime", threads=2)
    out = {"blazeface_576 (default)": BlazeFaceDetector(bf_model, canvas_width=576),
           "blazeface_512": BlazeFaceDetector(bf_model, canvas_width=512),
           "blazeface_640": BlazeFaceDetector(bf_model, canvas_width=640),
           "haar_512": HaarFaceDetector(max_width=512),
           "haar_320 (old default)": HaarFaceDetector(max_width=320)}
    if not quick:
        try:
            mtcnn = MTCNN(min_face=24)

            class _Mtcnn:
                name = "mtcnn"

                def detect(self, rgb):
                    return [Detection(*box, score) for box, score in mtcnn.detect(rgb)]
            out["mtcnn_min24"] = _Mtcnn()
        except (ImportError, AttributeError, TypeError):
            pass   # facenet-pytorch not installed
    return out


def recall_grid(dets, sources, label, quick):
    heights = HEIGHTS if not quick else (32, 48, 64, 128)
    rolls = ROLLS if not quick else (-30, 0, 30)
    table = {name: {} for name in dets}
    times = {name: {} for name in dets}
    for size, h, roll, q, frame, truth in grid(sources, FRAMES, heights, rolls, QUALITIES):
        key = f"{size[0]}x{size[1]}"
        for name, det in dets.items():
            t = time.perf_counter()
            found = [d.box for d in det.detect(frame)]
            times[name].setdefault(key, []).append((time.perf_counter() - t) * 1000)
            cell = table[name].setdefault(key, {}).setdefault(str(h), {"faces": 0, "found": 0, "roll30": [0, 0]})
            got = hits(truth, found)
            cell["faces"] += len(truth)
            cell["found"] += got
            if abs(roll) == 30:
                cell["roll30"][0] += got
                cell["roll30"][1] += len(truth)
    summary = {}
    for name in dets:
        summary[name] = {key: {h: round(c["found"] / c["faces"], 3) for h, c in cells.items()}
                         for key, cells in table[name].items()}
        summary[name]["ms_median"] = {key: round(statistics.median(v), 1) for key, v in times[name].items()}
    return {"faces": label, "recall": summary, "counts": table}


def false_positives(dets):
    frames = list(non_faces())
    return {"frames": len(frames),
            "false_faces_per_100_frames": {name: round(100 * sum(len(d.detect(f)) for f in frames) / len(frames), 2)
                                           for name, d in dets.items()}}


def face_path_ms(bf_detector, teacher):
    """detect + crop (roll-levelled) + teacher, one face in a 1280x720 frame, against detect alone."""
    frame = background(1280, 720)
    place_face(frame, astronaut_head(), (640, 360), 96, 15)

    def path():
        d = bf_detector.detect(frame)
        teacher.run({"face": crop_faces(frame, [x.box for x in d], rolls=[15.0] * len(d))})
    return interleaved({"detect": lambda: bf_detector.detect(frame), "face_path": path}, reps=40)


def roll_effect(bf_detector, teacher):
    """Roll-levelled crops, measured in two parts.
    1. The teacher on the same face rolled -30..+30 degrees (lfw_subset's 100 faces at 128 px in a
       1280x720 frame, the true box), the crop levelled by the roll vs not: mean |difference| to the
       upright face's output (valence, arousal, the 7 probabilities summed).
    2. The roll the detector's eye keypoints give for the astronaut rolled -30..+30 (error in degrees)."""
    from emo_perception.core.blazeface import eye_roll_degrees
    from emo_perception.core.circumplex import expression_to_valence_arousal

    def outputs(source, roll, level):
        frame = background(1280, 720)
        box = place_face(frame, source, (640, 360), 128, roll)
        logits = teacher.run({"face": crop_faces(frame, [box], rolls=[-roll] if level else None)})["expression_logits"]
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        return p[0], expression_to_valence_arousal(p)[0]

    sources = face_sources()[1:]
    upright = [outputs(src, 0, False) for src in sources]
    out = {}
    for level in (True, False):
        rows = []
        for roll in (-30, -20, -10, 10, 20, 30):
            d = np.array([[np.abs(p - rp).sum(), abs(va[0] - rva[0]), abs(va[1] - rva[1])]
                          for (p, va), (rp, rva) in zip((outputs(src, roll, level) for src in sources), upright)])
            rows.append({"roll": roll, "probs_l1": round(float(d[:, 0].mean()), 3),
                         "valence_diff": round(float(d[:, 1].mean()), 3),
                         "arousal_diff": round(float(d[:, 2].mean()), 3)})
        out["levelled" if level else "not_levelled"] = {
            "per_roll": rows, **{k: round(statistics.mean(r[k] for r in rows), 3)
                                 for k in ("probs_l1", "valence_diff", "arousal_diff")}}
    errors = []
    for roll in (-30, -20, -10, 0, 10, 20, 30):
        frame = background(1280, 720)
        place_face(frame, astronaut_head(), (640, 360), 128, roll)
        found = bf_detector.detect(frame)
        if found:   # the image rotates counter-clockwise by `roll`; levelling it takes -roll
            errors.append(round(abs(eye_roll_degrees(found[0].keypoints) + roll), 1))
    out["keypoint_roll_error_degrees_astronaut"] = errors
    return out


FOLLOW_STEP = 0.15    # face widths a followed face moves between processed frames (~0.4 m/s at 1.5 m, 15 Hz)
FOLLOW_FRAMES = 3     # a sequence: one full-frame detection, then frames that follow the faces


LANDMARKER = []    # --landmarks: the face pipeline with MediaPipe's landmarker (frames in between follow the landmarks)


# (name, detect_every, detect_async): the detector on every frame, on every third, and on every third in a
# worker thread while the frame follows its faces (issue 21)
VARIANTS = (("every_1", 1, False), ("every_3", 3, False), ("async_3", 3, True))


def _pipeline(bf_model, teacher, every, detect_async=False):
    from emo_perception.core.face_pipeline import FacePipeline
    from emo_perception.core.tracking import IouTracker
    return FacePipeline(BlazeFaceDetector(bf_model, canvas_width=576), teacher, IouTracker(), detect_every=every,
                        landmarker=LANDMARKER[0] if LANDMARKER else None, detect_async=detect_async)


def _close(pipe):
    """The pipeline's detection worker stops (its models are shared by the next pipelines: not released)."""
    if pipe.background is not None:
        pipe.background.close()


def _follows(pipe) -> int:
    return pipe.counts["region_detections"] + pipe.counts["landmark_follows"]


def followed_recall(bf_model, teacher, sources, quick):
    """Recall of the face pipeline with detect_every 3 (full-frame detection, then FOLLOW_FRAMES - 1 frames
    that look for each face only around its track) against the full detector on every frame, on moving
    faces: the grid's frames (720p and 1080p, heights, rolls, 1-3 faces, JPEG 30/90) as the first frame
    of a sequence in which every face moves FOLLOW_STEP of its height right and half that down per frame.
    Also the frames processed per kind, and per face size the recall on the following frames alone."""
    heights = HEIGHTS if not quick else (32, 48, 64, 128)
    rolls = ROLLS if not quick else (-30, 0, 30)
    table = {}
    k = 0
    for size in FRAMES:
        base = background(*size)
        for h in heights:
            for roll in rolls:
                for n in (1, 2, 3):
                    if n * 2.6 * h > size[0]:
                        continue
                    srcs = [sources[(k + i) % len(sources)] for i in range(n)]
                    k += n
                    for q in QUALITIES:
                        seq = []
                        for f in range(FOLLOW_FRAMES):
                            frame, truth = base.copy(), []
                            for i, src in enumerate(srcs):
                                centre = ((i + 1) * size[0] / (n + 1) + f * FOLLOW_STEP * h,
                                          size[1] / 2 + (k % 5 - 2) * size[1] / 12 + f * FOLLOW_STEP * h / 2)
                                truth.append(place_face(frame, src, centre, h, roll))
                            seq.append((jpeg(frame, q), truth))
                        for name, every, detect_async in VARIANTS:
                            pipe = _pipeline(bf_model, teacher, every, detect_async)
                            for f, (frame, truth) in enumerate(seq):
                                region = _follows(pipe)
                                found = [x.box for x in pipe.process(frame, 10.0 + f / 15).faces]
                                kind = "following" if _follows(pipe) > region else "full"
                                cell = table.setdefault(name, {}).setdefault(f"{size[0]}x{size[1]}", {})
                                c = cell.setdefault(str(h), {"faces": 0, "found": 0, "following_faces": 0,
                                                             "following_found": 0})
                                got = hits(truth, found)
                                c["faces"] += len(truth)
                                c["found"] += got
                                if kind == "following":
                                    c["following_faces"] += len(truth)
                                    c["following_found"] += got
                            _close(pipe)
    recall = {v: {size: {h: {"recall": round(c["found"] / c["faces"], 3),
                             "recall_following_frames": round(c["following_found"] / c["following_faces"], 3)
                             if c["following_faces"] else None,
                             "share_following_frames": round(c["following_faces"] / c["faces"], 3)}
                         for h, c in cells.items()} for size, cells in sizes.items()} for v, sizes in table.items()}
    return {"faces": "astronaut (real face with head and shoulders), moving", "step": FOLLOW_STEP,
            "frames_per_sequence": FOLLOW_FRAMES, "recall": recall, "counts": table}


def followed_path_ms(bf_model, teacher, faces=1):
    """The face pipeline's time per 1280x720 frame (detect + track + crop + teacher), the face moving
    slowly, VARIANTS interleaved; medians and means (every third frame is a full one; async_3: what the frame
    waits for, its full detection runs in a worker meanwhile)."""
    frames = []
    for f in range(30):
        frame = background(1280, 720)
        for i in range(faces):
            place_face(frame, astronaut_head(), (1280 * (i + 1) / (faces + 1) + 2 * f, 360), 96, 15)
        frames.append(frame)
    pipes = {name: _pipeline(bf_model, teacher, every, detect_async) for name, every, detect_async in VARIANTS}
    samples = {every: [] for every in pipes}
    for rep in range(4):
        for f, frame in enumerate(frames):
            for name, pipe in pipes.items():
                t = time.perf_counter()
                pipe.process(frame, 10.0 + (rep * len(frames) + f) / 15)
                samples[name].append((time.perf_counter() - t) * 1000)
                time.sleep(0.03)    # the worker's full detection runs between frames, as in the node
    out = {name: {"median_ms": round(statistics.median(v[6:]), 2), "mean_ms": round(statistics.mean(v[6:]), 2),
                  "p95_ms": round(float(np.percentile(v[6:], 95)), 2),
                  "full_detections": pipes[name].counts["full_detections"],
                  "region_detections": pipes[name].counts["region_detections"],
                  "landmark_follows": pipes[name].counts["landmark_follows"]}
           for name, v in samples.items()}
    for pipe in pipes.values():
        _close(pipe)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smaller grid, no MTCNN")
    ap.add_argument("--out", default="results/detectors.json")
    ap.add_argument("--followed", action="store_true",
                    help="only the face pipeline with detect_every 3 vs 1 (recall on moving faces, time per frame): "
                         "writes --out (default then results/detectors_followed.json)")
    ap.add_argument("--landmarks", action="store_true", help="with --followed: the face pipeline with the "
                                                             "landmarker, faces in between followed by their landmarks")
    a = ap.parse_args()
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    if a.followed:
        bf_model = load_model(MODELS / "blazeface_full_range.json", "onnxruntime", threads=2)
        teacher = load_model(MODELS / "expression_teacher.json", "onnxruntime", threads=2)
        if a.landmarks:
            from emo_perception.core.face_landmarks import FaceLandmarker

            LANDMARKER.append(FaceLandmarker(load_model(MODELS / "face_landmarks_detector.json", "onnxruntime",
                                                        threads=2),
                                             load_model(MODELS / "face_blendshapes.json", "onnxruntime", threads=2)))
        out = {"bench": "face_pipeline_detect_every_cpu_2_threads" + ("_landmarks" if a.landmarks else ""),
               "protocol": followed_recall.__doc__,
               "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start",
               "face_path_ms_1280x720_one_face": followed_path_ms(bf_model, teacher, 1),
               "face_path_ms_1280x720_two_faces": followed_path_ms(bf_model, teacher, 2),
               "in_context": followed_recall(bf_model, teacher, face_sources()[:1], a.quick)}
        default = "results/detectors_followed" + ("_landmarks" if a.landmarks else "") + ".json"
        path = pathlib.Path(a.out if a.out != "results/detectors.json" else default)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1))
        print(json.dumps({k: v for k, v in out.items() if k.startswith("face_path")}, indent=1))
        print(json.dumps(out["in_context"]["recall"], indent=1))
        return
    dets = detectors(a.quick)
    sources = face_sources()
    teacher = load_model(MODELS / "expression_teacher.json", "onnxruntime", threads=2)
    bf = dets["blazeface_576 (default)"]
    out = {"bench": "face_detectors_cpu_2_threads", "protocol": __doc__.split("\n\n")[1],
           "in_context": recall_grid(dets, sources[:1], "astronaut (real face with head and shoulders)", a.quick),
           "tight_crops": recall_grid(dets, sources[1:], "lfw_subset 100 tight 25x25 crops", a.quick),
           "non_faces": false_positives(dets),
           "face_path_ms_1280x720_one_face": face_path_ms(bf, teacher),
           "roll_levelling_teacher": roll_effect(bf, teacher)}
    path = pathlib.Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(json.dumps({k: out[k] for k in ("non_faces", "face_path_ms_1280x720_one_face")}, indent=1))
    for part in ("in_context", "tight_crops"):
        print(part, json.dumps(out[part]["recall"], indent=1))
    print("roll", json.dumps({k: {m: v[m] for m in v if m != "per_roll"} if isinstance(v, dict) else v
                              for k, v in out["roll_levelling_teacher"].items()}))


if __name__ == "__main__":
    main()
