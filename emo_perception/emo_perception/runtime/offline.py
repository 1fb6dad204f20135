"""The three nodes' pipelines in one process, fed recorded messages in arrival order: what offline
tools (bag evaluation, training features) run instead of the nodes, built by the same builders
from the same configs, so their output equals the live AffectArray stream when nothing is dropped.

Messages may be rclpy or `rosbags` messages (conversions reads both). Every value that travels
between the nodes as a message field is rounded the way the message rounds it (float32 fields,
nanosecond stamps), so the offline fusion sees bit for bit what the live fusion node sees.
"""
from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np

from .. import conversions
from ..core.audio_pipeline import AudioChunkError
from ..core.face_detection import DetectionError
from ..core.face_pipeline import FrameOutOfOrder
from ..core.fusion_pipeline import AudioFrame, FaceFrame, ModelIdMismatch
from .build import build_audio_stream, build_face_pipeline, build_fusion_pipeline

IMAGE, COMPRESSED_IMAGE, AUDIO_INFO, AUDIO = "image", "compressed_image", "audio_info", "audio"


def _f32(x) -> float:
    return float(np.float32(x))


def _ns(t: float) -> float:
    return conversions.stamp_to_seconds(conversions.seconds_to_stamp(t, _Stamp))


@dataclasses.dataclass
class _Stamp:
    sec: int
    nanosec: int


class OfflinePerception:
    """Feed messages with image()/audio_info()/audio() or replay(); collect AffectFrames."""

    def __init__(self, configs: dict):
        self.configs = configs
        self.face = build_face_pipeline(configs["face_embedding_node"])
        self.audio_stream = build_audio_stream(configs["audio_embedding_node"])
        self.fusion = build_fusion_pipeline(configs["fusion_node"])
        self.face_model_id = self.face.model.card.model_id
        self.counts = Counter()       # messages the nodes would have rejected, by reason
        self.problems = []            # (reason, text) of each, for reports

    def _reject(self, reason, err):
        self.counts[reason] += 1
        self.problems.append((reason, str(err)))
        return []

    def image(self, msg, compressed: bool = False) -> list:
        try:
            rgb = conversions.compressed_image_to_rgb(msg) if compressed else conversions.image_to_rgb(msg)
            result = self.face.process(rgb, conversions.stamp_to_seconds(msg.header.stamp))
        except (conversions.ConversionError, DetectionError) as err:
            return self._reject("frames_rejected", err)
        except FrameOutOfOrder as err:
            return self._reject("frames_out_of_order", err)
        faces = [dataclasses.replace(f, detection_confidence=_f32(f.detection_confidence), valence=_f32(f.valence),
                                     arousal=_f32(f.arousal), mouth_activity=_f32(f.mouth_activity))
                 for f in result.faces]
        frame = FaceFrame(conversions.stamp_to_seconds(msg.header.stamp), msg.header.frame_id, self.face_model_id,
                          faces, rgb.shape[1])
        return self._fuse(self.fusion.add_face, frame)

    def audio_info(self, msg):
        try:
            self.audio_stream.set_format(conversions.audio_format_from_info(msg))
        except conversions.ConversionError as err:
            self.audio_stream.reject_format(str(err))
            self._reject("audio_info_rejected", err)

    def audio(self, msg) -> list:
        if self.audio_stream.format is None:
            self.audio_stream.drop_without_info()
            return self._reject("chunks_without_info", "audio before a usable audio_info")
        try:
            mono = conversions.audio_bytes_to_mono(msg.audio.data, self.audio_stream.format)
            result = self.audio_stream.push(mono, conversions.stamp_to_seconds(msg.header.stamp))
        except (conversions.ConversionError, AudioChunkError) as err:
            return self._reject("chunks_rejected", err)
        steps = []
        for r in result.windows:
            frame = AudioFrame(_ns(r.end_time), self.audio_stream.encoder.model_id,
                               np.asarray(r.embedding, np.float32), _f32(r.voice_probability), _f32(r.loudness_dbfs))
            steps += self._fuse(self.fusion.add_audio, frame)
        return steps

    def _fuse(self, add, frame) -> list:
        try:
            add(frame)
            steps = self.fusion.ready()
        except ModelIdMismatch as err:
            return self._reject("model_mismatch", err)
        except ValueError as err:
            return self._reject("steps_rejected", err)
        return [self._frame(s) for s in steps]

    def _frame(self, step):
        people = [dataclasses.replace(p, valence=_f32(p.valence), arousal=_f32(p.arousal),
                                      confidence=_f32(p.confidence)) for p in step.people]
        return conversions.AffectFrame(dataclasses.replace(step, time=_ns(step.time), people=people),
                                       self.fusion.mode, self.fusion.model_id)

    def finish(self) -> list:
        """The steps still waiting for more data (the end of a recording)."""
        return [self._frame(s) for s in self.fusion.ready(flush=True)]

    def replay(self, messages) -> list:
        """(kind, msg) pairs in arrival order -> every AffectFrame, flushed at the end."""
        handlers = {IMAGE: self.image, COMPRESSED_IMAGE: lambda m: self.image(m, compressed=True),
                    AUDIO_INFO: lambda m: self.audio_info(m) or [], AUDIO: self.audio}
        out = []
        for kind, msg in messages:
            out += handlers[kind](msg)
        return out + self.finish()
