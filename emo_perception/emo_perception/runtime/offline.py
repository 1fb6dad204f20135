"""The three nodes' pipelines in one process, fed recorded messages in arrival order: what offline
tools (bag evaluation, training features) run instead of the nodes, built by the same builders
from the same configs, so their output equals the live AffectArray stream when nothing is dropped.

Messages may be rclpy or `rosbags` messages (conversions reads both). Every value that travels
between the nodes as a message field is rounded the way the message rounds it (float32 fields,
nanosecond stamps), so the offline fusion sees bit for bit what the live fusion node sees.
"""
from __future__ import annotations

import dataclasses
import math
from collections import Counter

import numpy as np

from .. import conversions
from ..core.fusion_pipeline import AudioFrame, FaceFrame
from ..core.health import OK
from .build import build_audio_stream, build_face_pipeline, build_fusion_pipeline
from .handlers import AudioHandler, FaceHandler, FusionHandler

IMAGE, COMPRESSED_IMAGE, AUDIO_INFO, AUDIO = "image", "compressed_image", "audio_info", "audio"


def _pose_as_sent(face):
    """The head pose as the fusion reads it from a FaceEmbedding: float32, None without blendshapes or
    with a non-finite angle (conversions._face_landmark_results)."""
    if face.head_pose is None or face.blendshapes is None:
        return None
    pose = tuple(_f32(v) for v in face.head_pose)
    return pose if all(math.isfinite(v) for v in pose) else None


def _f32(x) -> float:
    return float(np.float32(x))


def _ns(t: float) -> float:
    return conversions.stamp_to_seconds(conversions.seconds_to_stamp(t, _Stamp))


@dataclasses.dataclass
class _Stamp:
    sec: int
    nanosec: int


class OfflinePerception:
    """Feed messages with image()/audio_info()/audio() or replay(); collect AffectFrames. Each message
    goes through the nodes' own handlers (runtime/handlers.py)."""

    def __init__(self, configs: dict):
        self.configs = configs
        self.face = build_face_pipeline(configs["face_embedding_node"])
        self.audio_stream = build_audio_stream(configs["audio_embedding_node"])
        self.fusion = build_fusion_pipeline(configs["fusion_node"])
        self.face_handler = FaceHandler(self.face, configs["face_embedding_node"].stamp_source)
        self.audio_handler = AudioHandler(self.audio_stream, configs["audio_embedding_node"].stamp_source)
        self.fusion_handler = FusionHandler(self.fusion)
        self.face_model_id = self.face.model.card.model_id
        self.counts = Counter()       # what the nodes would have reported, by the nodes' own counter names
        self.problems = []            # (reason, text) of each, for reports

    def _record(self, handled):
        for p in handled.problems:
            self.counts[p.reason] += 1
            if p.level > OK:        # an expected event (level OK, e.g. audio before its AudioInfo) is no problem
                self.problems.append((p.reason, p.text))
        return handled

    def image(self, msg, compressed: bool = False, received: float | None = None) -> list:
        """`received`: the message's receive time (a bag's), which stamp_source 'arrival' places it by."""
        handled = self._record(self.face_handler.image(msg, compressed, received))
        if handled.result is None:
            return []
        # the fusion node reads these from a FaceEmbeddingArray: float32 fields
        faces = [dataclasses.replace(f, detection_confidence=_f32(f.detection_confidence), valence=_f32(f.valence),
                                     arousal=_f32(f.arousal), mouth_activity=_f32(f.mouth_activity),
                                     head_pose=_pose_as_sent(f))
                 for f in handled.result.faces]
        # the node restamps its output with the arrival time (to the nanosecond), else keeps the header
        stamp = conversions.stamp_to_seconds(msg.header.stamp) if handled.arrival is None else _ns(handled.arrival)
        frame = FaceFrame(stamp, msg.header.frame_id, self.face_model_id, faces, handled.rgb.shape[1],
                          self.face.affect_source, self.face.blendshape_names)
        return self._fused(self.fusion_handler.faces(frame))

    def audio_info(self, msg):
        self._record(self.audio_handler.info(msg))

    def audio(self, msg, received: float | None = None) -> list:
        handled = self._record(self.audio_handler.audio(msg, received))
        if handled.result is None:
            return []
        steps = []
        for r in handled.result.windows:     # as an AudioEmbedding carries it: float32, nanosecond stamp
            frame = AudioFrame(_ns(r.end_time), self.audio_stream.encoder.model_id,
                               np.asarray(r.embedding, np.float32), _f32(r.voice_probability), _f32(r.loudness_dbfs),
                               tuple(_f32(v) for v in r.affect))
            steps += self._fused(self.fusion_handler.audio(frame))
        return steps

    def _fused(self, handled) -> list:
        return [self._frame(s) for s in self._record(handled).steps]

    def _frame(self, step):
        people = [dataclasses.replace(p, valence=_f32(p.valence), arousal=_f32(p.arousal),
                                      confidence=_f32(p.confidence)) for p in step.people]
        return conversions.AffectFrame(dataclasses.replace(step, time=_ns(step.time), people=people),
                                       self.fusion.mode, self.fusion.model_id)

    def finish(self) -> list:
        """The steps still waiting for more data (the end of a recording)."""
        return [self._frame(s) for s in self.fusion_handler.finish()]

    def replay(self, messages) -> list:
        """(kind, msg) or (kind, msg, receive time s) in arrival order -> every AffectFrame, flushed at
        the end. Receive times are needed with stamp_source 'arrival' (a bag has them)."""
        handlers = {IMAGE: lambda m, r: self.image(m, received=r),
                    COMPRESSED_IMAGE: lambda m, r: self.image(m, compressed=True, received=r),
                    AUDIO_INFO: lambda m, r: self.audio_info(m) or [], AUDIO: lambda m, r: self.audio(m, r)}
        out = []
        for kind, msg, *received in messages:
            out += handlers[kind](msg, received[0] if received else None)
        return out + self.finish()
