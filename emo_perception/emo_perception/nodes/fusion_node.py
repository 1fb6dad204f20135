"""fusion_node: face + audio embeddings -> AffectArray on `affect` at 25 Hz of data time.

Streams are aligned by header stamps (never arrival time). Mode 'prior' needs no trained model;
mode 'gru' runs an exported fusion GRU. Optionally mirrors per-track output to ROS4HRI
(/humans/faces/<id>/expression, hri_msgs/Expression) when hri_msgs is installed.
"""
from __future__ import annotations

import math
import time

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus
from emo_perception_msgs.msg import Affect, AffectArray, AudioEmbedding, FaceEmbeddingArray
from sensor_msgs.msg import RegionOfInterest

from ..core.alignment import StreamAligner
from ..core.fusion_pipeline import MODES, AudioFrame, FaceFrame, FusionPipeline, ModelIdMismatch
from ..inference import load_model
from ..paths import resolve_model
from .node_support import OUTPUT_QOS, ConfigError, EmoNode, RateMeter, run_single, seconds_to_stamp, stamp_seconds


class FusionNode(EmoNode):
    def __init__(self, **kwargs):
        super().__init__("fusion_node", **kwargs)
        self._decl("mode", "prior", "'prior' (expression prior + voice, no training) or 'gru' (trained model)",
                   choices=MODES)
        self._decl("fusion_model", "fusion_gru.json", "fusion GRU model card for mode 'gru' (relative: package models/)")
        self._decl("period", 0.04, "output period in seconds of data time (0.04 = 25 Hz)", (0.005, 1.0))
        self._decl("tolerance", 0.04, "how far (s) an embedding's stamp may be from its output step", (0.0, 1.0))
        self._decl("max_wait", 0.3, "how long (s, data time) to wait for a lagging stream before fusing without it",
                   (0.0, 5.0))
        self._decl("hold", 0.2, "how long (s, data time) an embedding stands in for missing newer ones "
                   "(e.g. camera frames skipped under load)", (0.0, 5.0))
        self._decl("audio_hop", 0.04, "the audio node's hop (s): audio stamps are at least this far apart, "
                   "so a step can be fused without waiting for the next audio embedding", (0.0, 1.0))
        self._decl("reset_after", 1.0, "seconds (data time) after which an unseen track's state is dropped",
                   (0.0, 60.0))
        self._decl("publish_hri", False, "also publish /humans/faces/<id>/expression (needs hri_msgs)")
        self.declare_backend_parameters()
        self._rates = {"face": RateMeter(), "audio": RateMeter()}
        self._mismatch_reported = set()
        self._hri = None

    def configure(self):
        model = None
        if self.p("mode") == "gru":
            backend, options = self.backend_options(max_batch=8)
            model = load_model(resolve_model(self.p("fusion_model"), "fusion_gru"), backend, **options)
        for name in ("max_wait", "hold"):
            if self.p(name) < self.p("tolerance"):
                raise ConfigError(f"parameter '{name}' ({self.p(name)}) must be >= 'tolerance' ({self.p('tolerance')})")
        # 0.75: margin for the audio clock's small corrections (core/audio_buffer.py)
        aligner = StreamAligner(self.p("period"), self.p("tolerance"), self.p("max_wait"), self.p("hold"),
                                {"audio": 0.75 * self.p("audio_hop")})
        self.pipeline = FusionPipeline(self.p("mode"), model, aligner, self.p("reset_after"))
        if self.p("publish_hri"):
            try:
                from hri_msgs.msg import Expression
            except ImportError as err:
                raise ConfigError("parameter 'publish_hri' is true but hri_msgs is not installed "
                                  "(install ros-<distro>-hri-msgs or set publish_hri: false)") from err
            self._hri = (Expression, {})
        self._pub = self.create_publisher(AffectArray, "affect", OUTPUT_QOS)
        self.get_logger().info(f"fusion mode '{self.pipeline.mode}' ({self.pipeline.model_id})")

    def activate(self):
        self._subs.append(self.create_subscription(FaceEmbeddingArray, "faces/embeddings", self._on_faces, OUTPUT_QOS))
        self._subs.append(self.create_subscription(AudioEmbedding, "audio/embeddings", self._on_audio, OUTPUT_QOS))

    def _on_faces(self, msg):
        self._rates["face"].tick()
        frame = FaceFrame(stamp_seconds(msg.header.stamp), msg.header.frame_id, msg.model_id,
                          {f.track_id: (np.asarray(f.embedding, np.float32), (f.valence, f.arousal), f.box)
                           for f in msg.faces})
        self._add(self.pipeline.add_face, frame, "face")

    def _on_audio(self, msg):
        self._rates["audio"].tick()
        frame = AudioFrame(stamp_seconds(msg.header.stamp), msg.model_id, np.asarray(msg.embedding, np.float32),
                           msg.voice_probability, msg.loudness_dbfs)
        self._add(self.pipeline.add_audio, frame, "audio")

    def _add(self, add, frame, stream):
        t0 = time.monotonic()
        try:
            if not add(frame):
                self.count(f"{stream}_late_or_duplicate")
                return
        except ModelIdMismatch as err:
            self.count(f"{stream}_model_mismatch")
            if stream not in self._mismatch_reported:
                self._mismatch_reported.add(stream)
                self.get_logger().error(str(err))
            return
        try:
            steps = self.pipeline.ready()
        except ValueError as err:   # e.g. an embedding of the wrong length
            self.count("steps_rejected")
            self.get_logger().error(f"fusion step failed: {err}", throttle_duration_sec=5.0)
            return
        for step in steps:
            self._publish(step)
        if steps:
            self.processing_times.append((time.monotonic() - t0) / len(steps))

    def _publish(self, step):
        out = AffectArray(mode=self.pipeline.mode, model_id=self.pipeline.model_id)
        out.header.stamp = seconds_to_stamp(step.time, Time)
        out.header.frame_id = step.frame_id
        for person in step.people:
            if not (math.isfinite(person.valence) and math.isfinite(person.arousal)):
                self.count("non_finite_outputs")
                continue
            mods = (Affect.MODALITY_FACE if person.track_id in step.boxes else 0) | \
                   (Affect.MODALITY_VOICE if step.audio_present else 0)
            out.people.append(Affect(track_id=person.track_id, valence=person.valence, arousal=person.arousal,
                                     confidence=person.confidence, modalities=mods,
                                     box=step.boxes.get(person.track_id, RegionOfInterest())))
        self._pub.publish(out)
        self.count("steps_published")
        if self._hri is not None:
            self._publish_hri(out)

    def _publish_hri(self, out):
        expression_cls, pubs = self._hri
        for person in out.people:
            if not person.track_id:
                continue
            if person.track_id not in pubs:
                pubs[person.track_id] = self.create_publisher(
                    expression_cls, f"/humans/faces/{person.track_id}/expression", OUTPUT_QOS)
            msg = expression_cls(valence=person.valence, arousal=person.arousal, confidence=person.confidence)
            msg.header = out.header
            pubs[person.track_id].publish(msg)

    def diagnostic_values(self):
        values = {f"{k}_rate_hz": f"{m.rate():.1f}" for k, m in self._rates.items()}
        values.update(mode=self.pipeline.mode, model_id=self.pipeline.model_id)
        if self._mismatch_reported:
            return DiagnosticStatus.ERROR, "embedding model ids do not match the fusion model", values
        down = [k for k, m in self._rates.items() if m.rate() == 0.0]
        if down:
            return DiagnosticStatus.WARN, f"no {' or '.join(down)} embeddings in the last 5 s", values
        return DiagnosticStatus.OK, "ok", values


def main(args=None):
    return run_single(FusionNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
