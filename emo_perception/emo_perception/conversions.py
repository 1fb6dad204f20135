"""The one place where ROS messages become arrays and dataclasses and back (cv_bridge-style, no
ROS graph needed).

The *_from_msg / *_to_rgb readers work on anything shaped like the messages (duck typing): rclpy
messages and `rosbags`-decoded messages alike (byte fields may be bytes, array.array or numpy
arrays), so bag tools and nodes share them and the core stays free of ROS. The *_to_msg writers
build rclpy messages and import their classes lazily.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .core.audio_pipeline import AudioResult
from .core.circumplex import SYNONYMS
from .core.face_pipeline import FaceResult
from .core.fusion_pipeline import AudioFrame, FaceFrame, FusionStep, PersonAffect
from .core.rgb import require_rgb


class ConversionError(ValueError):
    """A message could not be converted; the text says what was wrong and what is expected. `cause`
    names the kind of fault where one text covers several (the unsupported encoding), so that a log
    throttle keeps them apart."""

    def __init__(self, text: str, cause: str = ""):
        super().__init__(text)
        self.cause = cause


# encoding -> (channels, dtype, channel order of the array we return)
_RAW_ENCODINGS = {
    "rgb8": (3, np.uint8, "rgb"),
    "bgr8": (3, np.uint8, "bgr"),
    "rgba8": (4, np.uint8, "rgba"),
    "bgra8": (4, np.uint8, "bgra"),
    "mono8": (1, np.uint8, "mono"),
    "mono16": (1, np.uint16, "mono"),
    "8UC1": (1, np.uint8, "mono"),
    "8UC3": (3, np.uint8, "bgr"),
}
_YUV422 = {"yuv422": "uyvy", "uyvy": "uyvy", "yuv422_yuy2": "yuyv", "yuyv": "yuyv"}
SUPPORTED_ENCODINGS = tuple(sorted(_RAW_ENCODINGS)) + tuple(sorted(_YUV422))


def image_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) uint8 RGB. Raises ConversionError for anything unsupported."""
    enc = msg.encoding
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ConversionError(f"image has size {w}x{h}; expected a positive width and height")
    if enc in _YUV422:
        if w % 2:
            raise ConversionError(f"{enc}: width {w} is odd; packed 4:2:2 shares chroma between pixel pairs, "
                                  "so the width must be even")
        plane = _rows(msg.data, h, w * 2, step, np.uint8, enc).reshape(h, w * 2)
        return _yuv422_to_rgb(plane, _YUV422[enc])
    if enc not in _RAW_ENCODINGS:
        raise ConversionError(f"unsupported image encoding '{enc}'; supported: {', '.join(SUPPORTED_ENCODINGS)}",
                              cause=f"encoding {enc}")
    channels, dtype, order = _RAW_ENCODINGS[enc]
    pixels = _rows(msg.data, h, w * channels * np.dtype(dtype).itemsize, step, dtype, enc,
                   bool(msg.is_bigendian)).reshape(h, w, channels)
    if dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)  # keep the 8 most significant bits
    return _to_rgb(pixels, order)


def _rows(data, h, row_bytes, step, dtype, enc, bigendian=False) -> np.ndarray:
    """Strip per-row padding (`step` > row size) and apply byte order."""
    if step < row_bytes:
        raise ConversionError(f"{enc}: step {step} is smaller than one row ({row_bytes} bytes)")
    buf = _as_bytes_array(data)
    if buf.size < step * (h - 1) + row_bytes:
        raise ConversionError(f"{enc}: data has {buf.size} bytes; expected {step * h} (step {step} x height {h})")
    if buf.size < step * h:
        buf = np.concatenate([buf, np.zeros(step * h - buf.size, np.uint8)])  # last row may be unpadded
    rows = buf[: step * h].reshape(h, step)[:, :row_bytes]
    pixels = np.ascontiguousarray(rows).view(np.dtype(dtype).newbyteorder(">" if bigendian else "<"))
    return pixels.astype(dtype, copy=False)


def _as_bytes_array(data) -> np.ndarray:
    """uint8 view of a message byte field (bytes, array.array, memoryview or list), copying only lists."""
    if isinstance(data, (list, tuple)):
        return np.asarray(data, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


_TO_RGB = {"mono": "COLOR_GRAY2RGB", "bgr": "COLOR_BGR2RGB", "bgra": "COLOR_BGRA2RGB", "rgba": "COLOR_RGBA2RGB"}


def _to_rgb(pixels: np.ndarray, order: str) -> np.ndarray:
    # OpenCV, not numpy slicing: a reversed-channel numpy copy of a 1080p frame takes 6.9 ms here,
    # cv2.cvtColor 0.3 ms (bench_core.py); this was what made the face node slower on larger frames.
    import cv2

    if order in _TO_RGB:
        return cv2.cvtColor(np.ascontiguousarray(pixels), getattr(cv2, _TO_RGB[order]))
    return np.ascontiguousarray(pixels[:, :, :3])


def _yuv422_to_rgb(plane: np.ndarray, layout: str) -> np.ndarray:
    """Packed 4:2:2 (UYVY or YUYV) -> RGB, BT.601 limited range (what cameras send)."""
    quads = plane.reshape(plane.shape[0], -1, 4).astype(np.float32)
    if layout == "uyvy":
        u, y0, v, y1 = (quads[..., i] for i in range(4))
    else:
        y0, u, y1, v = (quads[..., i] for i in range(4))
    y = np.stack([y0, y1], axis=-1).reshape(plane.shape[0], -1)
    u = np.repeat(u, 2, axis=1) - 128.0
    v = np.repeat(v, 2, axis=1) - 128.0
    c = 1.164 * (y - 16.0)
    rgb = np.stack([c + 1.596 * v, c - 0.392 * u - 0.813 * v, c + 2.017 * u], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def compressed_image_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG or PNG) -> (H, W, 3) uint8 RGB."""
    import cv2

    fmt = (msg.format or "").lower()
    if fmt and not any(k in fmt for k in ("jpeg", "jpg", "png")):
        raise ConversionError(f"unsupported compressed format '{msg.format}'; supported: jpeg, png",
                              cause=f"format {msg.format}")
    data = _as_bytes_array(msg.data)
    if data.size == 0:
        raise ConversionError("compressed image has no data (0 bytes); expected a JPEG or PNG file")
    # Newer OpenCV (4.14 here) decodes straight to RGB; an older one (Ubuntu's, JetPack's) gives BGR,
    # converted by OpenCV as in the raw path (_to_rgb), not by numpy's reversed-channel copy.
    to_rgb = getattr(cv2, "IMREAD_COLOR_RGB", None)
    try:
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR if to_rgb is None else to_rgb)
    except cv2.error as err:
        raise ConversionError(f"could not decode {data.size} bytes as JPEG/PNG: {err}") from err
    if decoded is None:
        raise ConversionError(f"could not decode {len(msg.data)} bytes as JPEG/PNG (format '{msg.format}')")
    return decoded if to_rgb is not None else _to_rgb(decoded, "bgr")


def rgb_to_image(rgb: np.ndarray, encoding: str = "rgb8", header=None):
    """(H, W, 3) uint8 RGB -> sensor_msgs/Image in `encoding` (rgb8, bgr8, rgba8, bgra8, mono8, mono16)."""
    from sensor_msgs.msg import Image

    require_rgb(rgb, ConversionError)
    if encoding not in _RAW_ENCODINGS:
        raise ConversionError(f"cannot encode '{encoding}'; supported: {', '.join(sorted(_RAW_ENCODINGS))}")
    channels, dtype, order = _RAW_ENCODINGS[encoding]
    if order == "mono":
        out = rgb[:, :, :1].astype(dtype) * (257 if dtype == np.uint16 else 1)
    else:
        out = rgb[:, :, ::-1] if order.startswith("bgr") else rgb
        if channels == 4:
            out = np.concatenate([out, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    out = np.ascontiguousarray(out).astype(np.dtype(dtype).newbyteorder("<"))
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding=encoding, is_bigendian=0,
                step=rgb.shape[1] * channels * np.dtype(dtype).itemsize)
    msg.data = out.tobytes()
    if header is not None:
        msg.header = header
    return msg


# ---------------------------------------------------------------------------------- audio
_SAMPLE_FORMATS = {"S16LE": "<i2", "S32LE": "<i4", "F32LE": "<f4", "U8": "u1", "S8": "i1"}
_PCM_CODINGS = ("", "wave", "wav", "pcm", "raw", "s16le", "audio/x-raw")


@dataclass(frozen=True)
class AudioFormat:
    """What AudioInfo says about the AudioData bytes."""

    sample_rate: int
    channels: int
    sample_format: str


def audio_format_from_info(info) -> AudioFormat:
    """Validate audio_common_msgs/AudioInfo; raise ConversionError with how to fix the source."""
    coding = (info.coding_format or "").lower()
    if coding not in _PCM_CODINGS:
        raise ConversionError(
            f"audio coding_format '{info.coding_format}' is compressed; raw PCM is expected. "
            "Run audio_capture with format:=wave (e.g. `ros2 launch audio_capture capture.launch.xml "
            "format:=wave sample_format:=S16LE`)")
    fmt = (info.sample_format or "S16LE").upper()
    if fmt not in _SAMPLE_FORMATS:
        raise ConversionError(f"sample_format '{info.sample_format}' unsupported; "
                              f"supported: {', '.join(_SAMPLE_FORMATS)}")
    if info.channels < 1 or info.sample_rate < 8000:
        raise ConversionError(f"AudioInfo has {info.channels} channels at {info.sample_rate} Hz; "
                              "expected >= 1 channel at >= 8000 Hz")
    return AudioFormat(int(info.sample_rate), int(info.channels), fmt)


def audio_bytes_to_mono(data, fmt: AudioFormat) -> np.ndarray:
    """AudioData.data -> mono float32 in [-1, 1] at fmt.sample_rate (channels averaged)."""
    raw = _as_bytes_array(data)
    dtype = np.dtype(_SAMPLE_FORMATS[fmt.sample_format])
    frame = dtype.itemsize * fmt.channels
    if raw.size % frame:
        raise ConversionError(f"{raw.size} audio bytes is not a whole number of {fmt.channels}-channel "
                              f"{fmt.sample_format} frames ({frame} bytes each)")
    x = raw.view(dtype).reshape(-1, fmt.channels)
    if dtype.kind == "f":
        x = x.astype(np.float32)
    elif dtype.kind == "u":
        x = (x.astype(np.float32) - 128.0) / 128.0
    else:
        x = x.astype(np.float32) / float(2 ** (8 * dtype.itemsize - 1))
    mono = x.mean(axis=1) if fmt.channels > 1 else x[:, 0]
    if not np.all(np.isfinite(mono)):
        raise ConversionError("audio holds NaN or infinite samples; expected finite PCM")
    return mono


def mono_to_audio_bytes(mono: np.ndarray, sample_format: str = "S16LE", channels: int = 1) -> bytes:
    """Float [-1, 1] mono -> interleaved PCM bytes (the same value in every channel)."""
    dtype = np.dtype(_SAMPLE_FORMATS[sample_format])
    x = np.clip(np.asarray(mono, np.float64), -1.0, 1.0)
    if dtype.kind == "f":
        y = x
    elif dtype.kind == "u":
        y = np.rint(x * 127.0 + 128.0)
    else:
        y = np.rint(x * (2 ** (8 * dtype.itemsize - 1) - 1))
    return np.repeat(y.astype(dtype)[:, None], channels, axis=1).tobytes()


# ---------------------------------------------------------------------------------- time
def stamp_to_seconds(stamp) -> float:
    """builtin_interfaces/Time (rclpy or rosbags) -> seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def restamped(header, t: float):
    """A copy of std_msgs/Header `header` stamped `t` seconds (its frame_id kept): outputs of inputs
    placed by their arrival time carry that time."""
    from std_msgs.msg import Header

    return Header(stamp=seconds_to_stamp(t), frame_id=header.frame_id)


def seconds_to_stamp(t: float, stamp_cls=None):
    """Seconds -> builtin_interfaces/Time (or `stamp_cls(sec=, nanosec=)`), rounded to the nanosecond."""
    if stamp_cls is None:
        from builtin_interfaces.msg import Time as stamp_cls
    total = int(round(t * 1e9))
    return stamp_cls(sec=total // 1_000_000_000, nanosec=total % 1_000_000_000)


def _box(roi):
    return int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height)


def _roi(box):
    from sensor_msgs.msg import RegionOfInterest

    if box is None:
        return RegionOfInterest()
    x, y, w, h = box
    return RegionOfInterest(x_offset=int(x), y_offset=int(y), width=int(w), height=int(h))


# ---------------------------------------------------------------------------------- our messages
def face_array_to_msg(faces, header, model_id: str, image_size, processing_time: float = 0.0,
                      expression_labels=(), blendshape_names=(), face_affect_source: str = ""):
    """FaceResult list -> emo_perception_msgs/FaceEmbeddingArray carrying the image's header;
    `expression_labels`: the names of the faces' expression probabilities (the model card's);
    `blendshape_names`: of their blendshapes (face_landmarks on; else ()); `face_affect_source`: where
    their valence/arousal come from (FacePipeline.affect_source)."""
    from emo_perception_msgs.msg import FaceEmbedding, FaceEmbeddingArray

    width, height = image_size
    out = FaceEmbeddingArray(header=header, model_id=model_id, image_width=int(width), image_height=int(height),
                             processing_time=float(processing_time),
                             expression_labels=[str(n) for n in expression_labels],
                             blendshape_names=[str(n) for n in blendshape_names],
                             face_affect_source=str(face_affect_source))
    for f in faces:
        shapes = getattr(f, "blendshapes", None)
        yaw, pitch, roll = getattr(f, "head_pose", None) or (float("nan"),) * 3
        out.faces.append(FaceEmbedding(
            track_id=f.track_id, box=_roi(f.box), detection_confidence=float(f.detection_confidence),
            track_age=int(f.track_age), embedding=np.asarray(f.embedding, np.float32).tolist(),
            expression_probabilities=np.asarray(f.expression_probabilities, np.float32).tolist(),
            valence=float(f.valence), arousal=float(f.arousal), mouth_activity=float(f.mouth_activity),
            blendshapes=[] if shapes is None else np.asarray(shapes, np.float32).tolist(),
            head_yaw=float(yaw), head_pitch=float(pitch), head_roll=float(roll)))
    return out


def _face_landmark_results(f) -> tuple:
    """(blendshapes or None, head pose or None) of a FaceEmbedding; bags recorded before these fields
    (and faces without landmarks) give (None, None)."""
    shapes = np.asarray(getattr(f, "blendshapes", ()), np.float32)
    if not len(shapes):
        return None, None
    pose = tuple(float(getattr(f, k, float("nan"))) for k in ("head_yaw", "head_pitch", "head_roll"))
    return shapes, (pose if all(np.isfinite(pose)) else None)


def face_frame_from_msg(msg) -> FaceFrame:
    """FaceEmbeddingArray -> the fusion's FaceFrame (stamp in seconds, FaceResult per face)."""
    labels = tuple(str(n) for n in getattr(msg, "expression_labels", ()))   # older bags lack it
    faces = [FaceResult(f.track_id, _box(f.box), float(f.detection_confidence), int(f.track_age),
                        np.asarray(f.embedding, np.float32), np.asarray(f.expression_probabilities, np.float32),
                        float(f.valence), float(f.arousal),
                        mouth_activity=float(getattr(f, "mouth_activity", float("nan"))),   # older bags lack it
                        expression_labels=labels, blendshapes=_face_landmark_results(f)[0],
                        head_pose=_face_landmark_results(f)[1])
             for f in msg.faces]
    return FaceFrame(stamp_to_seconds(msg.header.stamp), msg.header.frame_id, msg.model_id, faces,
                     int(msg.image_width), str(getattr(msg, "face_affect_source", "")),   # older bags lack these
                     tuple(str(n) for n in getattr(msg, "blendshape_names", ())))


def sound_azimuth_from_msg(msg, offset_deg: float = 0.0) -> tuple[float, float]:
    """geometry_msgs/PoseStamped of a sound source (respeaker_ros' `sound_localization`: a point on a
    circle around the array, x forward, y left) -> (stamp s, azimuth degrees + offset: the array's yaw
    relative to the camera). A source at the array's centre has no direction: ConversionError."""
    x, y = float(msg.pose.position.x), float(msg.pose.position.y)
    if not (np.isfinite(x) and np.isfinite(y)) or x == 0.0 and y == 0.0:
        raise ConversionError(f"sound source position ({x}, {y}) has no direction; expected a point away "
                              "from the microphone array's centre (x forward, y left)")
    az = float(np.degrees(np.arctan2(y, x))) + offset_deg
    return stamp_to_seconds(msg.header.stamp), (az + 180.0) % 360.0 - 180.0


def audio_embedding_to_msg(result: AudioResult, model_id: str, window_s: float, frame_id: str = ""):
    """AudioResult -> emo_perception_msgs/AudioEmbedding stamped at the window's end (audio clock)."""
    from emo_perception_msgs.msg import AudioEmbedding

    out = AudioEmbedding(window_duration=float(window_s), voice_probability=float(result.voice_probability),
                         loudness_dbfs=float(result.loudness_dbfs), model_id=model_id,
                         embedding=np.asarray(result.embedding, np.float32).tolist(),
                         valence_arousal_dominance=[float(v) for v in result.affect])
    out.header.frame_id = frame_id
    out.header.stamp = seconds_to_stamp(result.end_time)
    return out


def audio_frame_from_msg(msg) -> AudioFrame:
    return AudioFrame(stamp_to_seconds(msg.header.stamp), msg.model_id, np.asarray(msg.embedding, np.float32),
                      float(msg.voice_probability), float(msg.loudness_dbfs),
                      tuple(float(v) for v in msg.valence_arousal_dominance))


MODALITY_FACE, MODALITY_VOICE = 1, 2   # Affect.MODALITY_* (kept here so readers need no rclpy)


@dataclass
class AffectFrame:
    """One AffectArray as data: the step plus what produced it."""
    step: FusionStep
    mode: str
    model_id: str


def affect_array_to_msg(step: FusionStep, mode: str, model_id: str):
    """FusionStep -> emo_perception_msgs/AffectArray stamped at the step's grid time."""
    from emo_perception_msgs.msg import Affect, AffectArray

    out = AffectArray(mode=mode, model_id=model_id)
    out.header.stamp = seconds_to_stamp(step.time)
    out.header.frame_id = step.frame_id
    for p in step.people:
        out.people.append(Affect(track_id=p.track_id, valence=p.valence, arousal=p.arousal, confidence=p.confidence,
                                 modalities=(MODALITY_FACE if p.face else 0) | (MODALITY_VOICE if p.voice else 0),
                                 box=_roi(p.box)))
    return out


# FER2013 labels (core.circumplex.EXPRESSION_LABELS) -> hri_msgs/Expression constants
HRI_EXPRESSIONS = {"angry": "angry", "disgust": "disgusted", "fear": "scared", "happy": "happy", "sad": "sad",
                   "surprise": "surprised", "neutral": "neutral"}


def hri_expression_msgs(step: FusionStep, header, expression_cls) -> dict:
    """track id -> hri_msgs/Expression (ROS4HRI, /humans/faces/<id>/expression) for every face at the step."""
    out = {}
    for p in step.people:
        if p.track_id and p.face:
            name = p.expression.lower()
            msg = expression_cls(expression=HRI_EXPRESSIONS.get(SYNONYMS.get(name, name), ""), valence=float(p.valence),
                                 arousal=float(p.arousal), confidence=float(p.confidence))
            msg.header = header
            out[p.track_id] = msg
    return out


def affect_from_msg(msg) -> AffectFrame:
    people = [PersonAffect(p.track_id, float(p.valence), float(p.arousal), float(p.confidence),
                           bool(p.modalities & MODALITY_FACE), bool(p.modalities & MODALITY_VOICE),
                           _box(p.box) if p.modalities & MODALITY_FACE else None) for p in msg.people]
    return AffectFrame(FusionStep(stamp_to_seconds(msg.header.stamp), msg.header.frame_id, people),
                       msg.mode, msg.model_id)

