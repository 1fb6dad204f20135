"""eGeMAPS from openSMILE as the second audio embedding: in the audio node's stream and as the fusion
stage's audio input. Skipped where the opensmile wheel (research licence) is not installed."""
import json
import pathlib

import numpy as np
import pytest

pytest.importorskip("opensmile")

from emo_perception.conversions import AudioFormat  # noqa: E402
from emo_perception.runtime.build import build_audio_stream  # noqa: E402
from emo_perception.runtime.config import AudioConfig  # noqa: E402
from emo_perception.cli import train as emo_train  # noqa: E402
from media import speech_16k  # noqa: E402


def test_audio_stream_with_egemaps_gives_88_compressed_functionals_per_hop():
    stream = build_audio_stream(AudioConfig(audio_model="egemaps"))
    stream.set_format(AudioFormat(16000, 1, "S16LE"))
    speech = speech_16k()[:32000]
    signal = np.concatenate([np.zeros(16000, np.float32), speech])
    windows = []
    for k in range(0, len(signal) - 1600 + 1, 1600):
        windows += stream.push(signal[k:k + 1600], 100.0 + k / 16000).windows
    assert len(windows) > 30
    emb = np.stack([w.embedding for w in windows])
    assert emb.shape[1] == 88 and np.isfinite(emb).all()
    assert np.abs(emb).max() < 10          # sign(x) log(1 + |x|)
    assert stream.encoder.model_id.startswith("egemaps_v02@opensmile-")
    # silence and speech give different functionals (loudness, F0)
    assert np.abs(emb[0] - emb[-1]).max() > 0.5


@pytest.mark.media
def test_fusion_stage_trains_on_egemaps_and_names_it_in_the_card(tmp_path):
    from emo_perception.training.synthetic import generate

    # two short sessions of their own: eGeMAPS every 40 ms costs ~1.2 s per second of audio here
    root = pathlib.Path(generate(tmp_path / "set", sessions=2, seconds=5.0, recola_sessions=0, val_every=2)["lab"])
    out = tmp_path / "runs"
    args = ["fusion", "--quiet", "--data", f"lab:{root}", "--set", f"out_dir={out}", "--set", f"cache_dir={out}/cache",
            "--set", "audio_model=egemaps", "--set", "max_steps=4", "--set", "batch_size=2", "--set", "chunk_s=4",
            "--set", "chunk_hop_s=0.5"]
    assert emo_train.main(args) == 0
    s = json.loads((out / "summary.json").read_text())
    card = json.loads((out / "export" / "fusion_gru.json").read_text())
    assert card["model_args"]["audio_dim"] == 88
    assert card["model_args"]["audio_model_id"].startswith("egemaps_v02@")
    assert "gru_runtime" in s["baselines"]      # the export ran in the fusion node's pipeline on eGeMAPS frames


def test_egemaps_of_a_float_stream_louder_than_full_scale_is_finite_and_warns_nothing():
    from emo_perception.core.egemaps import EgemapsEncoder

    loud = np.sin(np.arange(15600) * 0.05).astype(np.float32) * 1e6   # F32 audio need not stay in [-1, 1]
    emb = EgemapsEncoder()(loud)          # pytest turns warnings into errors: a wrapping cast would fail
    assert emb.shape == (88,) and np.isfinite(emb).all()
