"""One handler per message: convert it, push it into the pipeline, catch the typed errors and say what
went wrong. The nodes call these from their callbacks and publish what comes back; the offline
runtime (runtime/offline.py) calls the same ones for recorded messages, so a bag evaluated offline
drops, counts and names exactly what the robot's nodes drop, count and name.

Messages may be rclpy or `rosbags` messages (conversions reads both). No ROS here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import conversions
from ..core.audio_pipeline import AudioChunkError, AudioStream
from ..core.face_detection import DetectionError
from ..core.face_pipeline import FacePipeline, FrameOutOfOrder
from ..core.fusion_pipeline import AudioFrame, FaceFrame, FusionPipeline, ModelIdMismatch
from ..core.health import ERROR, OK, WARN

NO_INFO_YET = ("audio arrives but no audio_info yet: chunks dropped (audio_info must be published "
               "transient-local)")


@dataclass
class Problem:
    """Something wrong with an input, for the log and /diagnostics (nodes) or the report (offline)."""
    reason: str             # the counter it is counted under, e.g. "frames_rejected"
    text: str               # what was wrong and, where known, what is expected
    level: int = ERROR      # core.health level
    count: bool = True      # False: the pipeline counts it already (its counters are merged in diagnostics)
    throttle: bool = True   # False: a rare event, logged every time
    quiet: bool = False     # True: said before (once per stream); counted, not logged again


@dataclass
class Handled:
    """What one message gave: outputs (may be empty) and what went wrong with it."""
    problems: list = field(default_factory=list)


@dataclass
class HandledImage(Handled):
    rgb: np.ndarray | None = None     # the converted frame (None: dropped)
    result: object = None             # core.face_pipeline.FaceFrameResult


@dataclass
class HandledAudio(Handled):
    result: object = None             # core.audio_pipeline push result: .windows


@dataclass
class HandledInfo(Handled):
    changed: object = None            # the new AudioFormat when it changed, else None


@dataclass
class HandledEmbedding(Handled):
    steps: list = field(default_factory=list)   # FusionStep, ready to publish


class FaceHandler:
    """Images (raw, compressed, or ROS4HRI aligned crops) -> the face pipeline."""

    def __init__(self, pipeline: FacePipeline):
        self.pipeline = pipeline

    def image(self, msg, compressed: bool = False) -> HandledImage:
        camera = msg.header.frame_id
        known = list(self.pipeline.cameras)
        try:
            rgb = conversions.compressed_image_to_rgb(msg) if compressed else conversions.image_to_rgb(msg)
            result = self.pipeline.process(rgb, conversions.stamp_to_seconds(msg.header.stamp), camera)
        except conversions.ConversionError as err:
            return HandledImage([Problem("frames_rejected", f"frame dropped: {err}")])
        except DetectionError as err:       # the pipeline counts it
            return HandledImage([Problem("frames_rejected", f"frame dropped: {err}", count=False)])
        except FrameOutOfOrder as err:
            return HandledImage([Problem("frames_out_of_order", f"frame dropped: {err}", WARN, count=False)])
        problems = self._jump(result)
        if known and camera not in known:
            problems.append(Problem("cameras_mixed", f"images from another camera on this topic: frame_id "
                                    f"'{camera}' after {known}; its faces get their own tracks, but they share "
                                    "one face stream: give each camera its own face node (docs/robot.md)", WARN,
                                    throttle=False))
        return HandledImage(problems, rgb, result)

    def aligned(self, ids_msg, crops: dict, max_faces: int, max_age: float) -> HandledImage:
        """ROS4HRI: the tracked ids and each face's latest aligned crop (id -> Image) -> the pipeline.
        A crop more than `max_age` older than the ids list is not used."""
        t = conversions.stamp_to_seconds(ids_msg.header.stamp)
        try:
            faces = [(fid, conversions.image_to_rgb(crops[fid]), None, 1.0)
                     for fid in list(ids_msg.ids)[:max_faces]
                     if fid in crops and 0.0 <= t - conversions.stamp_to_seconds(crops[fid].header.stamp) <= max_age]
            result = self.pipeline.process_aligned(faces, t)
        except conversions.ConversionError as err:
            return HandledImage([Problem("frames_rejected", f"frame dropped: {err}")])
        except FrameOutOfOrder as err:
            return HandledImage([Problem("frames_out_of_order", f"frame dropped: {err}", WARN, count=False)])
        return HandledImage(self._jump(result), np.zeros((0, 0, 3), np.uint8), result)   # no source image: 0x0

    @staticmethod
    def _jump(result) -> list:
        if not result.time_jump:
            return []
        return [Problem("time_jumps", f"image {result.time_jump}: face tracks reset", WARN, count=False,
                        throttle=False)]


class AudioHandler:
    """AudioInfo and audio chunks -> the audio stream."""

    def __init__(self, stream: AudioStream):
        self.stream = stream
        self._mismatch = None     # the sample-rate mismatch last said, so it is said once when it starts

    def info(self, msg) -> HandledInfo:
        try:
            fmt = conversions.audio_format_from_info(msg)
        except conversions.ConversionError as err:
            self.stream.reject_format(str(err))
            return HandledInfo([Problem("audio_info_rejected", f"unusable audio_info: {err}", throttle=False)])
        return HandledInfo(changed=fmt if self.stream.set_format(fmt) else None)

    def audio(self, msg) -> HandledAudio:
        if self.stream.format is None:
            stamp = conversions.stamp_to_seconds(msg.header.stamp)
            if self.stream.drop_without_info(stamp):   # counted; the start-up case is expected: not logged
                return HandledAudio([Problem("chunks_before_info", "audio before its first audio_info (start-up)",
                                             OK, count=False, quiet=True)])
            return HandledAudio([Problem("chunks_without_info", self.stream.format_problem or NO_INFO_YET,
                                         count=False)])
        try:
            mono = conversions.audio_bytes_to_mono(msg.audio.data, self.stream.format)
            result = self.stream.push(mono, conversions.stamp_to_seconds(msg.header.stamp))
        except conversions.ConversionError as err:
            return HandledAudio([Problem("chunks_rejected", f"audio chunk dropped: {err}")])
        except AudioChunkError as err:           # the stream counts it
            return HandledAudio([Problem("chunks_rejected", f"audio chunk dropped: {err}", count=False)])
        problems = []
        if result.time_jump:
            problems.append(Problem("time_jumps", f"audio {result.time_jump}: stream restarted", WARN, count=False,
                                    throttle=False))
        mismatch = self.stream.pipeline.rate.mismatch
        if mismatch and mismatch != self._mismatch:   # once when it starts; diagnostics say it while it lasts
            problems.append(Problem("sample_rate_mismatch", mismatch, count=False, throttle=False))
        self._mismatch = mismatch
        return HandledAudio(problems, result)


class FusionHandler:
    """Face and audio embeddings (messages, or the frames offline tools build) -> the fusion."""

    def __init__(self, pipeline: FusionPipeline):
        self.pipeline = pipeline
        self.mismatched = set()    # streams whose embeddings come from another model than the fusion's

    def faces_msg(self, msg) -> HandledEmbedding:
        return self.faces(conversions.face_frame_from_msg(msg))

    def audio_msg(self, msg) -> HandledEmbedding:
        return self.audio(conversions.audio_frame_from_msg(msg))

    def faces(self, frame: FaceFrame) -> HandledEmbedding:
        return self._add(self.pipeline.add_face, frame, "face")

    def audio(self, frame: AudioFrame) -> HandledEmbedding:
        return self._add(self.pipeline.add_audio, frame, "audio")

    def direction(self, msg, offset_deg: float) -> Handled:
        """A microphone array's sound direction (geometry_msgs/PoseStamped) -> speaker attribution."""
        try:
            stamp, azimuth = conversions.sound_azimuth_from_msg(msg, offset_deg)
        except conversions.ConversionError as err:
            return Handled([Problem("directions_rejected", f"sound direction dropped: {err}", WARN)])
        self.pipeline.add_sound_direction(stamp, azimuth)
        return Handled()

    def finish(self) -> list:
        """The steps still waiting for more data (the end of a recording)."""
        return self.pipeline.ready(flush=True)

    def _add(self, add, frame, stream) -> HandledEmbedding:
        try:
            result = add(frame)
        except ModelIdMismatch as err:    # counted by the pipeline; said once per stream
            said = stream in self.mismatched
            self.mismatched.add(stream)
            return HandledEmbedding([Problem(f"{stream}_model_mismatch", str(err), count=False, throttle=False,
                                             quiet=said)])
        problems = []
        if result.time_jump:
            problems.append(Problem("time_jumps", f"{stream} {result.time_jump}: fusion state reset", WARN,
                                    count=False, throttle=False))
        try:
            steps = self.pipeline.ready()
        except ValueError as err:   # e.g. an embedding of the wrong length
            return HandledEmbedding(problems + [Problem("steps_rejected", f"fusion step failed: {err}")])
        return HandledEmbedding(problems, steps)
