"""face_embedding_node: camera images -> FaceEmbeddingArray (faces, track ids, embeddings, expression).

The image callback keeps the newest frame and processes it at once when the previous one began at
least PROCESS_ON_ARRIVAL (0.9, runtime/config.py: below 1 so that a camera at processing_rate whose
frames come a little early keeps every frame) of a processing period ago, with no wait for a tick;
otherwise it is held, and a timer processes the newest held frame once 1.25 periods have passed, so
frames that arrive faster are counted as skipped instead of queueing up (ROS4HRI style). With
face_source hri the timer alone processes, at `processing_rate`.
Outputs carry the image's header unchanged.
"""
from __future__ import annotations

import time
from collections import deque

from emo_perception_msgs.msg import FaceEmbeddingArray
from sensor_msgs.msg import CompressedImage, Image

from .. import conversions
from ..core.arrival import ArrivalMeter, missing_warning, worst_stream
from ..core.face_pipeline import draw_faces
from ..core.health import ERROR, OK, WARN
from ..runtime import ConfigError, FaceConfig, build_face_pipeline
from ..runtime.config import PROCESS_ON_ARRIVAL
from ..runtime.handlers import FaceHandler
from .node_support import NO_INPUT_S, OUTPUT_QOS, EmoNode, RateMeter, input_qos, p95
from .runner import main_for

MISSING_WARN = 0.25  # share of the camera's frames (by their stamps) not arriving above which diagnostics WARN
INPUT_DEPTH = 2      # image queue: only the newest frame is processed, and big frames cost memory
HELD_CHECKS = 4      # the timer looks for a held frame this many times per processing period
HELD_AFTER = 1.25    # periods after the last processing began before a held frame is processed by the timer


class FaceEmbeddingNode(EmoNode):
    CONFIG = FaceConfig
    DESCRIPTION = "camera images -> tracked faces with embeddings and expression (FaceEmbeddingArray)"
    TOPICS = (("in", "image", "sensor_msgs/Image", "camera frames (rgb8, bgr8, mono8, yuv422, ...)"),
              ("in", "image/compressed", "sensor_msgs/CompressedImage", "JPEG/PNG frames, with use_compressed"),
              ("in", "/humans/faces/tracked", "hri_msgs/IdsList", "with face_source hri (ROS4HRI hri_face_detect)"),
              ("in", "/humans/faces/<id>/aligned", "sensor_msgs/Image", "with face_source hri: each face's crop"),
              ("out", "faces/embeddings", "emo_perception_msgs/FaceEmbeddingArray", "one per processed frame"),
              ("out", "faces/debug_image", "sensor_msgs/Image", "boxes and ids, drawn only while subscribed"),
              ("out", "/diagnostics", "diagnostic_msgs/DiagnosticArray", "input rate, timing, counters"))

    def __init__(self, **kwargs):
        super().__init__("face_embedding_node", **kwargs)
        self.pipeline = None
        self._latest = None
        self._rate_in = RateMeter()
        self.wait_times = deque(maxlen=100)
        self._last_started = float("-inf")   # the node's clock (s) when the latest processing began
        self._arrivals = ArrivalMeter(NO_INPUT_S)   # per frame_id: what arrives against what the stamps show

    def configure(self, cfg: FaceConfig):
        if cfg.face_source == "hri":
            try:
                from hri_msgs.msg import IdsList
            except ImportError as err:
                raise ConfigError("parameter 'face_source' is 'hri' but hri_msgs is not installed "
                                  "(install ros-<distro>-hri-msgs, or face_source: detector)") from err
            self._ids_cls = IdsList
        self.pipeline = build_face_pipeline(cfg, log=self.get_logger().info)
        self.handler = FaceHandler(self.pipeline, cfg.stamp_source)
        self.model_id = self.pipeline.model.card.model_id
        self._pub = self.publisher(FaceEmbeddingArray, "faces/embeddings", OUTPUT_QOS)
        self._debug_pub = None
        if cfg.debug_image and cfg.privacy_mode:
            self.get_logger().info("privacy_mode: faces/debug_image is not offered (it would carry the camera image)")
        elif cfg.debug_image:
            self._debug_pub = self.publisher(Image, "faces/debug_image", 1)
        detector = self.pipeline.detector.name if self.pipeline.detector else "none (faces from ROS4HRI)"
        self.get_logger().info(f"face model {self.model_id} on {cfg.backend}; detector {detector}")

    def activate(self):
        qos = input_qos(self.cfg.input_reliability, depth=INPUT_DEPTH)
        if self.cfg.face_source == "hri":
            self._aligned, self._aligned_subs = {}, {}
            self.subscribe(self._ids_cls, "/humans/faces/tracked", self._on_image, qos)
        elif self.cfg.use_compressed:
            self.subscribe(CompressedImage, "image/compressed", self._on_image, qos)
        else:
            self.subscribe(Image, "image", self._on_image, qos)
        self._held_timer = self.every(1.0 / (HELD_CHECKS * self.cfg.processing_rate), self._process_held)
        if self.cfg.face_source == "detector":
            # with our detector the timer is only for a held frame: ticking at 4x processing_rate with
            # nothing held cost ~7 % of a core (an idle node at 15 Hz: 8.3 % against 1.4 % at 1 Hz)
            self._held_timer.cancel()

    def _follow(self, ids):
        """Subscribe to the aligned crop of every tracked ROS4HRI face, and drop those that left."""
        for fid in ids:
            if fid not in self._aligned_subs:
                self.subscribe(Image, f"/humans/faces/{fid}/aligned",
                               lambda msg, fid=fid: self._aligned.__setitem__(fid, msg), input_qos("reliable", 2))
                self._aligned_subs[fid] = self._active_subs[-1]
        for fid in [f for f in self._aligned_subs if f not in ids]:
            sub = self._aligned_subs.pop(fid)
            self._active_subs.remove(sub)
            self.destroy_subscription(sub)
            self._aligned.pop(fid, None)

    def release(self):
        if self.pipeline is not None:
            self.pipeline.release()   # GPU memory goes now, not at garbage collection
        self.pipeline, self.handler, self._latest = None, None, None
        self._last_started = float("-inf")
        self.wait_times.clear()
        self._arrivals = ArrivalMeter(NO_INPUT_S)

    def _on_image(self, msg):
        self._rate_in.tick()
        self._arrivals.add(msg.header.frame_id, conversions.stamp_to_seconds(msg.header.stamp), time.monotonic())
        if self._latest is not None:
            self.counters["frames_skipped"] += 1
        self._latest = (msg, time.monotonic(), self.get_clock().now().nanoseconds * 1e-9)   # (stamp_source arrival)
        if self.cfg.face_source == "detector":    # ROS4HRI's crops may still be on their way: the timer waits
            self._process_latest(PROCESS_ON_ARRIVAL)
            if self._latest is not None and self._held_timer.is_canceled():
                self._held_timer.reset()          # held: the timer processes it once HELD_AFTER has passed

    def _process_held(self):
        """Timer: a frame held because it came early is processed once HELD_AFTER periods have passed
        (a faster camera's next frame has replaced it by then, and was processed on arrival); with
        face_source hri, every HELD_CHECKS-th tick: processing_rate."""
        self._process_latest(HELD_AFTER if self.cfg.face_source == "detector" else 1.0 - 0.5 / HELD_CHECKS)
        if self.cfg.face_source == "detector" and self._latest is None:
            self._held_timer.cancel()             # nothing held: the next held frame resets it

    def _process_latest(self, share: float):
        """Process the newest frame if `share` of the processing period has passed since the last began,
        on the node's clock (simulated time under use_sim_time: processing_rate is in data time, and
        nothing is processed before the first /clock)."""
        now = self.get_clock().now().nanoseconds * 1e-9
        # a clock that went back (a looping bag's /clock) does not hold processing until it catches up
        if self._latest is None or now <= 0.0 or 0.0 <= now - self._last_started < share / self.cfg.processing_rate:
            return
        msg, received, arrival = self._latest
        self._latest = None
        self._last_started = now
        started = time.monotonic()
        self.wait_times.append(started - received)   # waiting for the tick is not processing
        if self.cfg.face_source == "hri":
            self._follow(list(msg.ids)[: self.cfg.max_faces])
            handled = self.handler.aligned(msg, self._aligned, self.cfg.max_faces, self.cfg.hri_max_age, arrival)
        else:
            handled = self.handler.image(msg, compressed=isinstance(msg, CompressedImage), received=arrival)
        self.report_problems(handled)
        if handled.result is None:
            return
        rgb, result = handled.rgb, handled.result
        elapsed = time.monotonic() - started
        self.processing_times.append(elapsed)
        header = msg.header if handled.arrival is None else conversions.restamped(msg.header, handled.arrival)
        self._pub.publish(conversions.face_array_to_msg(result.faces, header, self.model_id,
                                                        (rgb.shape[1], rgb.shape[0]), elapsed,
                                                        self.pipeline.expression_labels,
                                                        self.pipeline.blendshape_names,
                                                        self.pipeline.affect_source))
        if self._debug_pub is not None and self._debug_pub.get_subscription_count() > 0 \
                and self.cfg.face_source == "detector":
            self._debug_pub.publish(conversions.rgb_to_image(draw_faces(rgb, result.faces), "rgb8", header))

    def pipeline_counts(self):
        return dict(self.pipeline.counts) if self.pipeline else {}

    def health(self):
        rate = self._rate_in.rate()
        values = {"input_rate_hz": f"{rate:.1f}", "model_id": self.model_id,
                  "tracks": str(self.pipeline.track_count())}
        arrivals = self._arrivals.stats(time.monotonic())
        cameras = sorted(arrivals)
        if cameras:
            values["frame_ids"] = ", ".join(cameras)
        lossy = worst_stream(arrivals)
        if lossy:
            values["stamped_rate_hz"] = f"{lossy[1].stamped_hz:.1f}"
            values["missing_before_node_percent"] = f"{100 * lossy[1].missing_fraction:.1f}"
        wait = p95(self.wait_times)
        if wait is not None:
            values["wait_for_tick_p95_s"] = f"{wait:.4f}"
        if rate == 0.0:
            return WARN, f"no images received in the last {NO_INPUT_S:.0f} s", values
        if self.counters["frames_rejected"] and not self.pipeline.counts["frames_processed"]:
            return ERROR, "every frame so far was rejected (see log)", values
        if lossy and lossy[1].missing_fraction > MISSING_WARN:
            return WARN, missing_warning(*lossy, p95(self.processing_times), INPUT_DEPTH), values
        if len(cameras) > 1:
            return WARN, (f"{len(cameras)} cameras on one image topic (frame_ids {', '.join(cameras)}): tracked "
                          "apart, but one face stream; give each camera its own face node"), values
        return OK, "ok", values


main = main_for(FaceEmbeddingNode)

if __name__ == "__main__":
    raise SystemExit(main())
