"""face_embedding_node: camera images -> FaceEmbeddingArray (faces, track ids, embeddings, expression).

The image callback only keeps the newest frame; a timer at `processing_rate` processes it, so
frames that arrive faster are counted as skipped instead of queueing up (ROS4HRI style).
Outputs carry the image's header unchanged.
"""
from __future__ import annotations

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus
from emo_perception_msgs.msg import FaceEmbedding, FaceEmbeddingArray
from sensor_msgs.msg import CompressedImage, Image, RegionOfInterest

from .. import conversions
from ..core.face_detection import make_detector
from ..core.face_pipeline import FacePipeline, draw_faces
from ..core.tracking import IouTracker
from ..inference import load_model
from ..paths import resolve_model
from .node_support import OUTPUT_QOS, RELIABILITY, EmoNode, RateMeter, input_qos, run_single, stamp_seconds


class FaceEmbeddingNode(EmoNode):
    def __init__(self, **kwargs):
        super().__init__("face_embedding_node", **kwargs)
        self._decl("processing_rate", 15.0, "frames processed per second (newer frames replace older ones)",
                   (0.1, 120.0))
        self._decl("face_model", "", "face model card (.json); '' = the shipped expression teacher, "
                   "a relative path is looked up in the package's models/")
        self._decl("detector", "haar", "face detector: haar (ships with OpenCV) or yunet (needs detector_model)",
                   choices=("haar", "yunet"))
        self._decl("detector_model", "", "model file for detectors that need one (yunet: the OpenCV zoo ONNX)")
        self._decl("detector_max_width", 320, "frames are downscaled to this width for detection (px)", (64, 4096))
        self._decl("min_face_size", 32, "smallest face detected, in detector pixels", (8, 1024))
        self._decl("max_faces", 8, "faces encoded per frame (largest-confidence first)", (1, 64))
        self._decl("track_min_iou", 0.3, "box overlap that continues a track", (0.0, 1.0))
        self._decl("track_max_age", 1.0, "seconds (data time) after which an unseen track ends", (0.0, 60.0))
        self._decl("use_compressed", False, "subscribe to image/compressed (JPEG/PNG) instead of image")
        self._decl("input_reliability", "best_effort", "reliability of the image subscription",
                   choices=tuple(RELIABILITY))
        self._decl("debug_image", True, "offer faces/debug_image (drawn only while someone subscribes)")
        self.declare_backend_parameters()
        self._latest = None
        self._rate_in = RateMeter()
        self._last_stamp = None

    def configure(self):
        card_path = resolve_model(self.p("face_model"), "expression_teacher")
        backend, options = self.backend_options(max_batch=self.p("max_faces"))
        model = load_model(card_path, backend, **options)
        detector = make_detector(self.p("detector"), self.p("detector_model"), max_width=self.p("detector_max_width"),
                                 min_face_px=self.p("min_face_size"))
        tracker = IouTracker(min_iou=self.p("track_min_iou"), max_age_s=self.p("track_max_age"))
        self.pipeline = FacePipeline(detector, model, tracker, self.p("max_faces"))
        self.model_id = model.card.model_id
        self._pub = self.create_publisher(FaceEmbeddingArray, "faces/embeddings", OUTPUT_QOS)
        self._debug_pub = self.create_publisher(Image, "faces/debug_image", 1) if self.p("debug_image") else None
        self.get_logger().info(f"face model {self.model_id} on {backend}; detector {detector.name}")

    def activate(self):
        qos = input_qos(self.p("input_reliability"), depth=2)
        if self.p("use_compressed"):
            self._subs.append(self.create_subscription(CompressedImage, "image/compressed", self._on_image, qos))
        else:
            self._subs.append(self.create_subscription(Image, "image", self._on_image, qos))
        self._timers.append(self.create_timer(1.0 / self.p("processing_rate"), self._process_latest))

    def release(self):
        self.pipeline = None

    def _on_image(self, msg):
        self._rate_in.tick()
        if self._latest is not None:
            self.count("frames_skipped")
        self._latest = (msg, time.monotonic())

    def _process_latest(self):
        if self._latest is None:
            return
        msg, received = self._latest
        self._latest = None
        stamp = stamp_seconds(msg.header.stamp)
        try:
            if isinstance(msg, CompressedImage):
                rgb = conversions.compressed_image_to_rgb(msg)
            else:
                rgb = conversions.image_to_rgb(msg)
            faces = self.pipeline.process(rgb, stamp)
        except conversions.ConversionError as err:
            self.count("frames_rejected")
            self.get_logger().error(f"frame dropped: {err}", throttle_duration_sec=5.0)
            return
        except ValueError as err:   # e.g. a frame older than the previous one
            self.count("frames_out_of_order")
            self.get_logger().warn(f"frame dropped: {err}", throttle_duration_sec=5.0)
            return
        self.count("frames_processed")
        out = FaceEmbeddingArray(header=msg.header, model_id=self.model_id, image_width=rgb.shape[1],
                                 image_height=rgb.shape[0])
        for f in faces:
            x, y, w, h = f.box
            out.faces.append(FaceEmbedding(
                track_id=f.track_id, box=RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h),
                detection_confidence=f.detection_confidence, track_age=f.track_age,
                embedding=f.embedding.astype(np.float32).tolist(),
                expression_probabilities=f.expression_probabilities.tolist(), valence=f.valence, arousal=f.arousal))
        elapsed = time.monotonic() - received
        out.processing_time = float(elapsed)
        self.processing_times.append(elapsed)
        self._pub.publish(out)
        if self._debug_pub is not None and self._debug_pub.get_subscription_count() > 0:
            self._debug_pub.publish(conversions.rgb_to_image(draw_faces(rgb, faces), "rgb8", msg.header))

    def diagnostic_values(self):
        rate = self._rate_in.rate()
        values = {"input_rate_hz": f"{rate:.1f}", "model_id": self.model_id, "backend": self.p("backend"),
                  "tracks": str(len(self.pipeline.tracker.tracks)) if self.pipeline else "0"}
        if rate == 0.0:
            return DiagnosticStatus.WARN, "no images received in the last 5 s", values
        if self.counters.get("frames_rejected", 0) and not self.counters.get("frames_processed", 0):
            return DiagnosticStatus.ERROR, "every frame so far was rejected (see log)", values
        return DiagnosticStatus.OK, "ok", values


def main(args=None):
    return run_single(FaceEmbeddingNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
