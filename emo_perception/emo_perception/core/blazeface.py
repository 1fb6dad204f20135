"""BlazeFace (MediaPipe's full-range face detector) post-processing: anchors, decoding, weighted NMS.

The network (models/blazeface_full_range.onnx, converted by `emo_convert_blazeface`) is fully
convolutional: one 16-channel regressor and one logit per cell of a stride-4 grid, one anchor per
cell with a fixed size (MediaPipe's face_detection_full_range.pbtxt: num_layers 1, strides [4],
anchor_offset 0.5, fixed_anchor_size true). At MediaPipe's 192x192 input that is 48x48 = 2304
anchors; at any other input of a multiple of 32 it is (H/4)x(W/4), and because the anchor size is
fixed the regressors are input pixels: box centre = anchor centre + (r0, r1), size = (r2, r3),
keypoint k = anchor centre + (r4+2k, r5+2k). Keypoints: right eye, left eye (the person's), nose tip,
mouth centre, right ear tragion, left ear tragion.
"""
from __future__ import annotations

import numpy as np

STRIDE = 4
INPUT_MULTIPLE = 32          # the network downsamples by 32 and upsamples back: sides must divide by it
NUM_KEYPOINTS = 6
RIGHT_EYE, LEFT_EYE, NOSE, MOUTH, RIGHT_EAR, LEFT_EAR = range(NUM_KEYPOINTS)
SCORE_CLIP = 100.0           # MediaPipe clips logits to +-100 before the sigmoid
MIN_SCORE = 0.6              # MediaPipe's threshold for the full-range model
NMS_IOU = 0.3                # MediaPipe's min_suppression_threshold (weighted NMS)


def anchor_centres(height: int, width: int) -> np.ndarray:
    """(H/4 * W/4, 2) anchor centres (x, y) in input pixels, row-major like the network's output."""
    if height % INPUT_MULTIPLE or width % INPUT_MULTIPLE:
        raise ValueError(f"BlazeFace input {width}x{height}: both sides must be multiples of {INPUT_MULTIPLE}")
    ys, xs = np.mgrid[0:height // STRIDE, 0:width // STRIDE].astype(np.float32)
    return np.stack([(xs.ravel() + 0.5) * STRIDE, (ys.ravel() + 0.5) * STRIDE], axis=1)


def decode(regressors: np.ndarray, logits: np.ndarray, anchors: np.ndarray, min_score: float = MIN_SCORE):
    """Raw outputs (A, 16) and (A,) or (A, 1) -> (boxes (N, 4) x0 y0 x1 y1, keypoints (N, 6, 2), scores (N,))
    in input pixels for the anchors whose score reaches min_score."""
    logits = np.clip(np.asarray(logits, np.float32).reshape(-1), -SCORE_CLIP, SCORE_CLIP)
    # Threshold on logits: the sigmoid is only computed for the few candidates.
    keep = np.flatnonzero(logits >= np.log(min_score / (1.0 - min_score)))
    raw, centre = regressors.reshape(-1, 16)[keep], anchors[keep]
    cx, cy = centre[:, 0] + raw[:, 0], centre[:, 1] + raw[:, 1]
    half_w, half_h = raw[:, 2] / 2.0, raw[:, 3] / 2.0
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    keypoints = raw[:, 4:16].reshape(-1, NUM_KEYPOINTS, 2) + centre[:, None, :]
    scores = 1.0 / (1.0 + np.exp(-logits[keep]))
    return boxes, keypoints, scores


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (4,) x0 y0 x1 y1 box with (N, 4) boxes."""
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def weighted_nms(boxes, keypoints, scores, iou_threshold: float = NMS_IOU):
    """MediaPipe's weighted non-maximum suppression: each cluster of candidates overlapping the best
    remaining one by more than the threshold becomes one face, its box and keypoints the score-weighted
    mean of the cluster, its score the best one. Returns the same three arrays, best first."""
    order = np.argsort(-scores, kind="stable")
    out_b, out_k, out_s = [], [], []
    while order.size:
        overlap = box_iou(boxes[order[0]], boxes[order])
        cluster, order = order[overlap > iou_threshold], order[overlap <= iou_threshold]
        if cluster.size == 0:      # a degenerate (zero-area) best box overlaps nothing, not even itself
            cluster, order = order[:1], order[1:]
        w = scores[cluster][:, None]
        out_b.append((boxes[cluster] * w).sum(0) / w.sum())
        out_k.append((keypoints[cluster] * w[:, :, None]).sum(0) / w.sum())
        out_s.append(scores[cluster].max())
    if not out_s:
        return np.zeros((0, 4), np.float32), np.zeros((0, NUM_KEYPOINTS, 2), np.float32), np.zeros(0, np.float32)
    return np.array(out_b, np.float32), np.array(out_k, np.float32), np.array(out_s, np.float32)


def eye_roll_degrees(keypoints: np.ndarray) -> float:
    """In-plane head roll from the eye keypoints: 0 upright, positive when the person's left eye (on
    the image's right) is lower, i.e. the angle to rotate the image by (counter-clockwise) to level the eyes."""
    (rx, ry), (lx, ly) = keypoints[RIGHT_EYE], keypoints[LEFT_EYE]
    return float(np.degrees(np.arctan2(ly - ry, lx - rx)))
