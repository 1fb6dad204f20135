"""audio_embedding_node: microphone audio (audio_common_msgs, as audio_capture publishes it) ->
AudioEmbedding every hop, stamped with the audio's own clock (end of the analysed window)."""
from __future__ import annotations

import time

from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus
from emo_perception_msgs.msg import AudioEmbedding
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy

from .. import conversions
from ..core.audio_buffer import WINDOW_S
from ..core.audio_pipeline import AudioPipeline, LogMelStatsEncoder, NetworkAudioEncoder, SampleRateMismatch
from ..core.vad import VoiceActivity
from ..inference import load_model
from ..paths import resolve_model
from .node_support import (OUTPUT_QOS, RELIABILITY, EmoNode, RateMeter, input_qos, run_single, seconds_to_stamp,
                           stamp_seconds)

# audio_capture publishes AudioInfo once, transient-local, so late subscribers still get it.
INFO_QOS = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE,
                      durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)


class AudioEmbeddingNode(EmoNode):
    def __init__(self, **kwargs):
        super().__init__("audio_embedding_node", **kwargs)
        self._decl("audio_model", "logmel_stats", "audio encoder: 'logmel_stats' (untrained log-mel statistics) "
                   "or an audio_encoder model card (.json)")
        self._decl("hop", 0.04, "seconds between embeddings (0.04 = the 25 Hz annotation rate)", (0.01, 1.0))
        self._decl("window", WINDOW_S, "seconds of audio per embedding (0.975 = 96 log-mel frames)", (0.1, 5.0))
        self._decl("gap_tolerance", 0.15, "seconds a chunk may arrive late (scheduling jitter) before "
                   "samples are taken as missing and the stream restarts",
                   (0.001, 1.0))
        self._decl("stamp_position", "end", "what an AudioDataStamped stamp marks: 'end' of the chunk "
                   "(audio_capture stamps on arrival) or its 'start'", choices=("end", "start"))
        self._decl("input_reliability", "best_effort", "reliability of the audio subscription",
                   choices=tuple(RELIABILITY))
        self.declare_backend_parameters()
        self._format = None
        self._pipeline = None
        self._rate_in = RateMeter()
        self._info_problem = None

    def configure(self):
        name = self.p("audio_model")
        if name == "logmel_stats":
            self._encoder = LogMelStatsEncoder()
        else:
            backend, options = self.backend_options()
            self._encoder = NetworkAudioEncoder(load_model(resolve_model(name, name), backend, **options))
        self._vad = VoiceActivity()
        self._pub = self.create_publisher(AudioEmbedding, "audio/embeddings", OUTPUT_QOS)
        self.get_logger().info(f"audio encoder {self._encoder.model_id}; waiting for audio_info")

    def activate(self):
        self._subs.append(self.create_subscription(AudioInfo, "audio_info", self._on_info, INFO_QOS))
        self._subs.append(self.create_subscription(AudioDataStamped, "audio_stamped", self._on_audio,
                                                   input_qos(self.p("input_reliability"), depth=50)))

    def _on_info(self, info):
        try:
            fmt = conversions.audio_format_from_info(info)
        except conversions.ConversionError as err:
            self._format, self._pipeline, self._info_problem = None, None, str(err)
            self.get_logger().error(f"unusable audio_info: {err}")
            return
        if fmt != self._format:
            self._format, self._info_problem = fmt, None
            self._vad.reset()
            self._pipeline = AudioPipeline(self._encoder, self._vad, fmt.sample_rate, self.p("hop"),
                                           self.p("window"), self.p("gap_tolerance"))
            self.get_logger().info(f"audio: {fmt.channels} ch {fmt.sample_format} at {fmt.sample_rate} Hz")

    def _on_audio(self, msg):
        self._rate_in.tick()
        if self._pipeline is None:
            self.count("chunks_without_info")
            self.get_logger().warn(self._info_problem or "audio arrives but no audio_info yet: chunks dropped "
                                   "(audio_info must be published transient-local)", throttle_duration_sec=5.0)
            return
        received = time.monotonic()
        try:
            mono = conversions.audio_bytes_to_mono(msg.audio.data, self._format)
            results = self._pipeline.push(mono, stamp_seconds(msg.header.stamp),
                                          stamp_marks_end=self.p("stamp_position") == "end")
        except SampleRateMismatch as err:
            self.count("sample_rate_mismatch")
            self._info_problem = str(err)
            self.get_logger().error(str(err))
            return
        except (conversions.ConversionError, ValueError) as err:
            self.count("chunks_rejected")
            self.get_logger().error(f"audio chunk dropped: {err}", throttle_duration_sec=5.0)
            return
        stats = self._pipeline.windower.stats
        self.counters.update(gaps=stats.gaps, chunks_out_of_order=stats.dropped_chunks)
        for r in results:
            out = AudioEmbedding(window_duration=float(self.p("window")), voice_probability=r.voice_probability,
                                 loudness_dbfs=r.loudness_dbfs, model_id=self._encoder.model_id,
                                 embedding=r.embedding.tolist())
            out.header.frame_id = msg.header.frame_id
            out.header.stamp = seconds_to_stamp(r.end_time, Time)
            self._pub.publish(out)
            self.count("embeddings")
        if results:
            self.processing_times.append(time.monotonic() - received)

    def diagnostic_values(self):
        values = {"input_rate_hz": f"{self._rate_in.rate():.1f}", "model_id": self._encoder.model_id,
                  "format": str(self._format)}
        if self._info_problem:
            return DiagnosticStatus.ERROR, self._info_problem, values
        if self._rate_in.rate() == 0.0:
            return DiagnosticStatus.WARN, "no audio received in the last 5 s", values
        return DiagnosticStatus.OK, "ok", values


def main(args=None):
    return run_single(AudioEmbeddingNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
