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
from ..core.face_pipeline import FacePipeline, FrameHeld, FrameOutOfOrder
from ..core.fusion_pipeline import AudioFrame, FaceFrame, FusionPipeline, ModelIdMismatch
from ..core.health import ERROR, OK, WARN
from ..core.stream_time import STAMPED, UNSTAMPED, StampSource
from ..inference.model_card import ModelRunError

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
    cause: str = ""         # what tells problems of one reason apart for the log throttle (e.g. the encoding);
                            # "" = the text with its numbers masked


@dataclass
class Handled:
    """What one message gave: outputs (may be empty) and what went wrong with it."""
    problems: list = field(default_factory=list)


@dataclass
class HandledImage(Handled):
    rgb: np.ndarray | None = None     # the converted frame (None: dropped)
    result: object = None             # core.face_pipeline.FaceFrameResult
    arrival: float | None = None      # stamp_source 'arrival': the stamp the result is on (outputs carry it);
                                      # None: the message's own header stamp


class StampPlacer:
    """StampSource (core/stream_time.py) of one input, per camera (frame_id), with what it finds said
    for people: an unstamped stream once as an ERROR naming the input and the cause (then counted,
    and on /diagnostics while it lasts), stamps that move again once."""

    def __init__(self, source: str, node: str, what: str):
        self.source, self.node, self.what = source, node, what   # what: "frames", "chunks"
        self._sources = {}

    def place(self, stream: str, header_stamp, received: float | None, camera: str = "") -> tuple:
        """(stamp in seconds or None: drop the message, problems)."""
        src = self._sources.setdefault(camera, StampSource(self.source))
        stamp, event = src.place(conversions.stamp_to_seconds(header_stamp), received)
        name = f"{stream} (frame_id '{camera}')" if camera else stream
        if stamp is None:
            t = src.constant
            cause = "header.stamp is left at 0" if t == 0 else f"every stamp is {t:.9f} s: the stamp does not advance"
            text = (f"{name}: {src.repeats} {self.what} in a row with one stamp ({cause}): the driver does not stamp "
                    f"them, so they are dropped (their time is unknown). Fix the driver, or set {self.node}'s "
                    "parameter stamp_source to 'arrival' (stamped when they arrive: later than the capture by the "
                    "driver's and the transport's delay; docs/robustness.md#stamp-source)")
            return None, [Problem(f"unstamped_{self.what}", text, ERROR, throttle=False, quiet=event != UNSTAMPED)]
        if event == STAMPED:
            return stamp, [Problem("stamps_resumed", f"{name}: stamps move again ({stamp:.3f} s): {self.what} are "
                                   "used again", WARN, count=False, throttle=False)]
        return stamp, []


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

    def __init__(self, pipeline: FacePipeline, stamp_source: str = "header"):
        self.pipeline = pipeline
        self.stamps = StampPlacer(stamp_source, "face_embedding_node", "frames")

    def image(self, msg, compressed: bool = False, received: float | None = None) -> HandledImage:
        """`received`: when the message arrived (the node's clock; offline: the bag's receive time),
        used with stamp_source 'arrival'."""
        camera = msg.header.frame_id
        known = list(self.pipeline.cameras)
        stamp, problems = self.stamps.place("image/compressed" if compressed else "image", msg.header.stamp,
                                            received, camera)
        if stamp is None:
            return HandledImage(problems)
        try:
            rgb = conversions.compressed_image_to_rgb(msg) if compressed else conversions.image_to_rgb(msg)
            result = self.pipeline.process(rgb, stamp, camera)
        except conversions.ConversionError as err:
            return HandledImage(problems + [Problem("frames_rejected", f"frame dropped: {err}", cause=err.cause)])
        except DetectionError as err:       # the pipeline counts it
            return HandledImage(problems + [Problem("frames_rejected", f"frame dropped: {err}", count=False)])
        except (FrameOutOfOrder, FrameHeld) as err:
            return HandledImage(problems + self._bad_stamp() + [self._order_problem(err)])
        except ModelRunError as err:        # a backend fault on this frame (GPU, driver): the next may run
            return HandledImage(problems + [Problem("model_errors", f"frame dropped: {err}")])
        problems += self._bad_stamp() + self._worker_error() + self._jump(result)
        if known and camera not in known:
            problems.append(Problem("cameras_mixed", f"images from another camera on this topic: frame_id "
                                    f"'{camera}' after {known}; its faces get their own tracks, but they share "
                                    "one face stream: give each camera its own face node (docs/robot.md)", WARN,
                                    throttle=False))
        return HandledImage(problems, rgb, result, self._arrival(stamp))

    def aligned(self, ids_msg, crops: dict, max_faces: int, max_age: float,
                received: float | None = None) -> HandledImage:
        """ROS4HRI: the tracked ids and each face's latest aligned crop (id -> Image) -> the pipeline.
        A crop more than `max_age` older than the ids list (by their header stamps) is not used."""
        stamp, problems = self.stamps.place("/humans/faces/tracked", ids_msg.header.stamp, received)
        if stamp is None:
            return HandledImage(problems)
        t = conversions.stamp_to_seconds(ids_msg.header.stamp)
        try:
            faces = [(fid, conversions.image_to_rgb(crops[fid]), None, 1.0)
                     for fid in list(ids_msg.ids)[:max_faces]
                     if fid in crops and 0.0 <= t - conversions.stamp_to_seconds(crops[fid].header.stamp) <= max_age]
            result = self.pipeline.process_aligned(faces, stamp)
        except conversions.ConversionError as err:
            return HandledImage(problems + [Problem("frames_rejected", f"frame dropped: {err}", cause=err.cause)])
        except (FrameOutOfOrder, FrameHeld) as err:
            return HandledImage(problems + self._bad_stamp() + [self._order_problem(err)])
        return HandledImage(problems + self._bad_stamp() + self._jump(result), np.zeros((0, 0, 3), np.uint8), result,
                            self._arrival(stamp))   # no source image: 0x0

    def _arrival(self, stamp: float) -> float | None:
        return stamp if self.stamps.source == "arrival" else None

    def _bad_stamp(self) -> list:
        """What the pipeline found out about a held stamp with this frame, once."""
        text, self.pipeline.bad_stamp = self.pipeline.bad_stamp, None
        return [Problem("bad_stamps", f"image {text}", WARN, count=False)] if text else []

    def _worker_error(self) -> list:
        """detect_async: the previous frame's full detection failed in the worker (the pipeline counts it): the faces
        in view are still followed, but a face that comes into view is not found while it fails."""
        text, self.pipeline.worker_error = self.pipeline.worker_error, None
        return [Problem("full_detections_failed", f"full-frame detection failed ({text}); the faces in view are "
                        "still followed, new faces are not found until it works again", WARN, count=False)] \
            if text else []

    @staticmethod
    def _order_problem(err) -> Problem:
        if isinstance(err, FrameHeld):   # not a problem yet: the next frame decides (counted by the pipeline)
            return Problem("frames_held", f"frame {err}", OK, count=False, quiet=True)
        return Problem("frames_out_of_order", f"frame dropped: {err}", WARN, count=False)

    @staticmethod
    def _jump(result) -> list:
        if not result.time_jump:
            return []
        return [Problem("time_jumps", f"image {result.time_jump}: face tracks reset", WARN, count=False,
                        throttle=False)]


class AudioHandler:
    """AudioInfo and audio chunks -> the audio stream."""

    def __init__(self, stream: AudioStream, stamp_source: str = "header"):
        self.stream = stream
        self.stamps = StampPlacer(stamp_source, "audio_embedding_node", "chunks")
        self._mismatch = None     # the sample-rate mismatch last said, so it is said once when it starts

    def info(self, msg) -> HandledInfo:
        try:
            fmt = conversions.audio_format_from_info(msg)
        except conversions.ConversionError as err:
            self.stream.reject_format(str(err))
            return HandledInfo([Problem("audio_info_rejected", f"unusable audio_info: {err}", throttle=False)])
        return HandledInfo(changed=fmt if self.stream.set_format(fmt) else None)

    def audio(self, msg, received: float | None = None) -> HandledAudio:
        """`received`: when the chunk arrived (the node's clock; offline: the bag's receive time), used
        with stamp_source 'arrival' (then taken as the time just after its last sample)."""
        stamp, problems = self.stamps.place("audio_stamped", msg.header.stamp, received)
        if stamp is None:
            return HandledAudio(problems)
        if self.stream.format is None:
            if self.stream.drop_without_info(stamp):   # counted; the start-up case is expected: not logged
                return HandledAudio(problems + [Problem("chunks_before_info", "audio before its first audio_info "
                                                        "(start-up)", OK, count=False, quiet=True)])
            return HandledAudio(problems + [Problem("chunks_without_info", self.stream.format_problem or NO_INFO_YET,
                                                    count=False)])
        try:
            mono = conversions.audio_bytes_to_mono(msg.audio.data, self.stream.format)
            result = self.stream.push(mono, stamp)
        except conversions.ConversionError as err:
            return HandledAudio(problems + [Problem("chunks_rejected", f"audio chunk dropped: {err}",
                                                    cause=err.cause)])
        except AudioChunkError as err:           # the stream counts it
            return HandledAudio(problems + [Problem("chunks_rejected", f"audio chunk dropped: {err}", count=False)])
        except ModelRunError as err:             # a backend fault on this chunk's windows
            return HandledAudio(problems + [Problem("model_errors", f"audio chunk's embeddings lost: {err}")])
        if result.time_jump:
            problems.append(Problem("time_jumps", f"audio {result.time_jump}: stream restarted", WARN, count=False,
                                    throttle=False))
        if result.bad_stamp:
            problems.append(Problem("bad_stamps", f"audio {result.bad_stamp}", WARN, count=False))
        if result.gap:
            problems.append(Problem("gaps", f"audio: {result.gap}", WARN, count=False))
        mismatch = self.stream.pipeline.rate.mismatch
        # once when it starts (its text carries the measured rate, new every chunk); diagnostics say it while it lasts
        if mismatch and not self._mismatch:
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
        except ModelRunError as err:   # a backend fault: these steps are lost, the next may run
            return HandledEmbedding(problems + [Problem("model_errors", f"fusion steps lost: {err}")])
        return HandledEmbedding(problems, steps)
