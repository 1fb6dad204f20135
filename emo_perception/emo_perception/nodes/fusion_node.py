"""fusion_node: face + audio embeddings -> AffectArray on `affect` at 25 Hz of data time.

Streams are aligned by header stamps (never arrival time). Mode 'prior' needs no trained model;
mode 'gru' runs an exported fusion GRU. Optionally mirrors per-track output to ROS4HRI
(/humans/faces/<id>/expression, hri_msgs/Expression) when hri_msgs is installed.
"""
from __future__ import annotations

import time

from emo_perception_msgs.msg import AffectArray, AudioEmbedding, FaceEmbeddingArray
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data

from .. import conversions
from ..core.health import ERROR, OK, WARN
from ..runtime import ConfigError, FusionConfig, build_fusion_pipeline
from ..runtime.handlers import FusionHandler
from .node_support import NO_INPUT_S, OUTPUT_QOS, EmoNode, RateMeter
from .runner import main_for


# Reliable and transient local: a late or restarted subscriber (the session logger) still gets the
# last 10 s at 25 Hz; volatile subscribers match it as usual.
AFFECT_QOS = QoSProfile(depth=250, reliability=QoSReliabilityPolicy.RELIABLE,
                        durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)


class FusionNode(EmoNode):
    CONFIG = FusionConfig
    DESCRIPTION = "face + audio embeddings -> per-person valence/arousal (AffectArray) at 25 Hz of data time"
    TOPICS = (("in", "faces/embeddings", "emo_perception_msgs/FaceEmbeddingArray", "from face_embedding_node"),
              ("in", "audio/embeddings", "emo_perception_msgs/AudioEmbedding", "from audio_embedding_node"),
              ("in", "<sound_direction_topic>", "geometry_msgs/PoseStamped", "optional: the sound source's direction"),
              ("out", "affect", "emo_perception_msgs/AffectArray", "one per 40 ms grid step with data"),
              ("out", "/humans/faces/<id>/expression", "hri_msgs/Expression", "with publish_hri (ROS4HRI)"),
              ("out", "/diagnostics", "diagnostic_msgs/DiagnosticArray", "input rates, jumps, counters"))

    def __init__(self, **kwargs):
        super().__init__("fusion_node", **kwargs)
        self.pipeline = None
        self._rates = {"face": RateMeter(), "audio": RateMeter()}
        self._hri = None

    def configure(self, cfg: FusionConfig):
        if cfg.publish_hri:
            try:
                from hri_msgs.msg import Expression
            except ImportError as err:
                raise ConfigError("parameter 'publish_hri' is true but hri_msgs is not installed "
                                  "(install ros-<distro>-hri-msgs or set publish_hri: false)") from err
            self._hri = (Expression, {})
        self.pipeline = build_fusion_pipeline(cfg, log=self.get_logger().info)
        self.handler = FusionHandler(self.pipeline)
        self._pub = self.publisher(AffectArray, "affect", AFFECT_QOS)
        self.get_logger().info(f"fusion mode '{self.pipeline.mode}' ({self.pipeline.model_id})")

    def activate(self):
        self.subscribe(FaceEmbeddingArray, "faces/embeddings", self._on_faces, OUTPUT_QOS)
        self.subscribe(AudioEmbedding, "audio/embeddings", self._on_audio, OUTPUT_QOS)
        if self.cfg.sound_direction_topic:
            from geometry_msgs.msg import PoseStamped

            # best effort matches reliable and best-effort publishers alike
            self.subscribe(PoseStamped, self.cfg.sound_direction_topic, self._on_direction, qos_profile_sensor_data)

    def release(self):
        if self.pipeline is not None:
            self.pipeline.release()
        if self._hri is not None:
            for pub in self._hri[1].values():
                self.destroy_publisher(pub)
        self.pipeline, self.handler, self._hri = None, None, None

    def _on_faces(self, msg):
        self._rates["face"].tick()
        started = time.monotonic()
        self._publish(started, self.handler.faces_msg(msg))

    def _on_audio(self, msg):
        self._rates["audio"].tick()
        started = time.monotonic()
        self._publish(started, self.handler.audio_msg(msg))

    def _on_direction(self, msg):
        self.report_problems(self.handler.direction(msg, self.cfg.sound_direction_offset))

    def _publish(self, started, handled):
        self.report_problems(handled)
        for step in handled.steps:
            out = conversions.affect_array_to_msg(step, self.pipeline.mode, self.pipeline.model_id)
            self._pub.publish(out)
            if self._hri is not None:
                self._publish_hri(step, out.header)
        if handled.steps:
            self.processing_times.append((time.monotonic() - started) / len(handled.steps))

    def _publish_hri(self, step, header):
        expression_cls, pubs = self._hri
        for track, msg in conversions.hri_expression_msgs(step, header, expression_cls).items():
            if track not in pubs:   # ROS4HRI topics are absolute, one per face id
                pubs[track] = self.create_publisher(expression_cls, f"/humans/faces/{track}/expression", OUTPUT_QOS)
            pubs[track].publish(msg)

    def pipeline_counts(self):
        if self.pipeline is None:
            return {}
        stats = self.pipeline.aligner.stats
        return {**self.pipeline.counts, "late_dropped": stats.late_dropped, "duplicates": stats.duplicates}

    def health(self):
        values = {f"{k}_rate_hz": f"{m.rate():.1f}" for k, m in self._rates.items()}
        values.update(mode=self.pipeline.mode, model_id=self.pipeline.model_id)
        late, timing = self.pipeline.timing_health()
        values.update(timing)
        if self.handler.mismatched:
            return ERROR, "embedding model ids do not match the fusion model", values
        if late:
            return WARN, late, values
        down = [k for k, m in self._rates.items() if m.rate() == 0.0]
        if down:
            return WARN, f"no {' or '.join(down)} embeddings in the last {NO_INPUT_S:.0f} s", values
        return OK, "ok", values


main = main_for(FusionNode)

if __name__ == "__main__":
    raise SystemExit(main())
