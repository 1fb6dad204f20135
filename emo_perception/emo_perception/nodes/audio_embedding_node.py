"""audio_embedding_node: microphone audio (audio_common_msgs, as audio_capture publishes it) ->
AudioEmbedding every hop, stamped with the audio's own clock (end of the analysed window)."""
from __future__ import annotations

import time

from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from emo_perception_msgs.msg import AudioEmbedding

from .. import conversions
from ..core.health import OK, WARN
from ..runtime import AudioConfig, build_audio_stream
from ..runtime.handlers import AudioHandler
from .node_support import INFO_QOS, NO_INPUT_S, OUTPUT_QOS, EmoNode, RateMeter, input_qos
from .runner import main_for


class AudioEmbeddingNode(EmoNode):
    CONFIG = AudioConfig
    DESCRIPTION = "microphone audio -> an AudioEmbedding every hop (voice probability, loudness, embedding)"
    TOPICS = (("in", "audio_stamped", "audio_common_msgs/AudioDataStamped",
               "raw PCM chunks (audio_capture, format:=wave)"),
              ("in", "audio_info", "audio_common_msgs/AudioInfo", "sample rate/format, transient-local"),
              ("out", "audio/embeddings", "emo_perception_msgs/AudioEmbedding",
               "every hop, stamped on the audio clock"),
              ("out", "/diagnostics", "diagnostic_msgs/DiagnosticArray", "format problems, rates, counters"))

    def __init__(self, **kwargs):
        super().__init__("audio_embedding_node", **kwargs)
        self.stream = None
        self._rate_in = RateMeter()

    def configure(self, cfg: AudioConfig):
        self.stream = build_audio_stream(cfg, log=self.get_logger().info)
        self.handler = AudioHandler(self.stream, cfg.stamp_source)
        self._pub = self.publisher(AudioEmbedding, "audio/embeddings", OUTPUT_QOS)
        self.get_logger().info(f"audio encoder {self.stream.encoder.model_id}; waiting for audio_info")

    def activate(self):
        self.subscribe(AudioInfo, "audio_info", self._on_info, INFO_QOS)
        self.subscribe(AudioDataStamped, "audio_stamped", self._on_audio,
                       input_qos(self.cfg.input_reliability, depth=50))

    def release(self):
        if self.stream is not None:
            self.stream.release()
        self.stream, self.handler = None, None

    def _on_info(self, info):
        handled = self.handler.info(info)
        self.report_problems(handled)
        if handled.changed is not None:
            fmt = handled.changed
            self.get_logger().info(f"audio: {fmt.channels} ch {fmt.sample_format} at {fmt.sample_rate} Hz")

    def _on_audio(self, msg):
        self._rate_in.tick()
        received = time.monotonic()
        handled = self.handler.audio(msg, self.get_clock().now().nanoseconds * 1e-9)   # (stamp_source arrival)
        self.report_problems(handled)
        if handled.result is None:
            return
        for r in handled.result.windows:
            self._pub.publish(conversions.audio_embedding_to_msg(r, self.stream.encoder.model_id, self.cfg.window,
                                                                 msg.header.frame_id))
        if handled.result.windows:
            self.processing_times.append(time.monotonic() - received)

    def pipeline_counts(self):
        return self.stream.counters() if self.stream else {}

    def health(self):
        values = {"input_rate_hz": f"{self._rate_in.rate():.1f}", "model_id": self.stream.encoder.model_id,
                  "format": str(self.stream.format)}
        level, message = self.stream.health()
        if level > OK:
            return level, message, values
        if self._rate_in.rate() == 0.0:
            return WARN, f"no audio received in the last {NO_INPUT_S:.0f} s", values
        return OK, "ok", values


main = main_for(AudioEmbeddingNode)

if __name__ == "__main__":
    raise SystemExit(main())
