"""State that grows with running time stays bounded (issue 20, item 9: an hour, flat). The one-hour soak of the
node processes is bench/bench_soak.py; this is the container it found, run through the fusion as the node
runs it: faces and no voiced audio (nobody speaks) for three minutes of data time."""
import tracemalloc

import numpy as np

from emo_perception.core.face_pipeline import FaceResult
from emo_perception.core.fusion_pipeline import AudioFrame, FaceFrame
from emo_perception.core.speaker import HISTORY_SLACK_S
from emo_perception.runtime import load_configs
from emo_perception.runtime.build import build_fusion_pipeline
from emo_perception.runtime.handlers import FusionHandler
from node_harness import PARAMS

RATE = 25.0   # face frames per second, two people


def _faces(t, rng):
    return FaceFrame(t, "camera", "expression_teacher@047c35e97d2a",
                     [FaceResult(f"f{i}", (100 + 200 * i, 100, 80, 80), 0.9, 10,
                                 rng.normal(size=128).astype(np.float32), np.full(7, 1 / 7, np.float32), 0.1, 0.2,
                                 mouth_activity=0.01) for i in range(2)], 640)


def test_lip_activity_and_fusion_state_stay_bounded_without_a_voice():
    cfg = load_configs(PARAMS)["fusion_node"]
    pipeline = build_fusion_pipeline(cfg)
    handler = FusionHandler(pipeline)
    rng = np.random.default_rng(0)
    silence = np.zeros(64, np.float32)
    held, traced = [], []
    tracemalloc.start()
    try:
        for k in range(int(3 * 60 * RATE)):
            t = 1000.0 + k / RATE
            handler.faces(_faces(t, rng))
            handler.audio(AudioFrame(t, "logmel_stats@1", silence, 0.0, -60.0))   # every 40 ms, never voiced
            if k % int(30 * RATE) == 0:
                held.append(pipeline.speakers.history_size())
                traced.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    bound = 2 * RATE * (pipeline.speakers.config.window_s + HISTORY_SLACK_S) + 2
    assert max(held) <= bound, held                                 # two tracks, window + slack
    assert traced[-1] - traced[2] < 100_000, traced                 # 1 -> 3 minutes: no growth


def test_a_lasting_sample_rate_mismatch_is_said_once_not_once_a_chunk():
    """Its text carries the measured rate, which changes with every chunk: the soak's audio node logged
    3,787 such lines in an hour (a publisher that fell behind on a loaded machine)."""
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo

    from emo_perception import conversions
    from emo_perception.runtime.build import build_audio_stream
    from emo_perception.runtime.handlers import AudioHandler

    handler = AudioHandler(build_audio_stream(load_configs(PARAMS)["audio_embedding_node"]))
    handler.info(AudioInfo(channels=1, sample_rate=16000, sample_format="S16LE", bitrate=0, coding_format="wave"))
    rng = np.random.default_rng(0)
    said, t = 0, 100.0
    for _ in range(100):                        # 1024-sample chunks stamped as if 14,500 samples/s came
        msg = AudioDataStamped()
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int((t % 1) * 1e9)
        msg.audio.data = conversions.mono_to_audio_bytes(rng.normal(0, 0.01, 1024).astype(np.float32), "S16LE", 1)
        said += sum(p.reason == "sample_rate_mismatch" for p in handler.audio(msg).problems)
        t += 1024 / 14500 * (1 + rng.normal(0, 0.01))
    assert said == 1
    assert "declares 16000 Hz" in handler.stream.pipeline.rate.mismatch    # and it still lasts (diagnostics)
