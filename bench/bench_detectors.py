"""Offline face detectors compared on real faces: recall, false positives, CPU time (2 threads).

Haar (OpenCV, the shipped default) vs MTCNN with the P/R/O-Net weights that ship in
facenet-pytorch (installed --no-deps: its own code needs torchvision, so the cascade is
re-implemented here in torch + OpenCV, following Zhang et al. 2016 and facenet-pytorch's
thresholds). Data: scikit-image's lfw_subset (100 faces, 100 non-faces, 25 px, upscaled to 200 px
on a 640x480 canvas) and the astronaut. Prints JSON.
"""
import importlib.util
import json
import os
import time

import cv2
import numpy as np
import torch
from skimage import data
from torch import nn

from emo_perception.core.face_detection import HaarFaceDetector
from emo_perception.core.tracking import iou
from emo_perception.tools.media_files import lfw_on_canvas


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


def main():
    torch.set_num_threads(2)
    lfw = data.lfw_subset()
    faces, non_faces = [lfw_on_canvas(f) for f in lfw[:100]], [lfw_on_canvas(f) for f in lfw[100:]]
    astronaut = data.astronaut()
    frame = cv2.resize(astronaut, (640, 480))
    haar = HaarFaceDetector()
    detectors = {"haar": lambda img: [(d.box, d.score) for d in haar.detect(img)]}
    try:
        mtcnn = MTCNN()
        detectors["mtcnn"] = mtcnn.detect
    except (ImportError, AttributeError, TypeError):
        pass   # facenet-pytorch not installed
    out = {"bench": "face_detectors_cpu_2_threads", "detectors": {}}
    for name, detect in detectors.items():
        detect(frame)
        t = time.perf_counter()
        for _ in range(10):
            detect(frame)
        ms = (time.perf_counter() - t) / 10 * 1000
        astro = detect(astronaut)
        out["detectors"][name] = {
            "recall_lfw_100": sum(len(detect(f)) > 0 for f in faces),
            "false_positives_on_100_non_faces": sum(len(detect(f)) for f in non_faces),
            "astronaut_detections": len(astro),
            "astronaut_best_iou": round(max((iou(b, (165, 55, 115, 115)) for b, _ in astro), default=0.0), 2),
            "ms_per_640x480_frame": round(ms, 1),
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
