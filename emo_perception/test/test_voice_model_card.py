"""Bring your own voice model (issue 22 item 3): a voice model card (core/voice_model.py) describes an
ONNX that maps a 16 kHz window (raw samples) or a log-mel patch to an embedding and/or valence,
arousal and dominance; the audio node loads it as `audio_model`; the prior fusion uses its
valence/arousal. Stand-ins are tiny torch nets exported here (nothing downloads): one shaped as
audEERING's wav2vec 2.0 model (input `signal` (1, time), outputs `hidden_states` and `logits` =
arousal, dominance, valence in 0..1), one taking a log-mel patch."""
import dataclasses
import json
import math
import pathlib
import time

import numpy as np
import pytest

from emo_perception import conversions
from emo_perception.core.audio_frontend import LogMelConfig, log_mel
from emo_perception.core.audio_pipeline import AudioResult
from emo_perception.core.fusion_pipeline import AudioFrame, FaceFrame, FaceResult, FusionPipeline, PriorMode
from emo_perception.core.voice_model import VOICE_MODEL_KIND, voice_model_spec
from emo_perception.inference import ModelFileError, load_card
from emo_perception.inference.model_card import CARD_FORMAT, ModelCard, sha256
from emo_perception.runtime import AudioConfig, build_audio_stream
from emo_perception.runtime.offline import OfflinePerception
from emo_perception.runtime.params_file import load_configs
from emo_perception.runtime.params import ConfigError
from media import speech_16k

WINDOW = 16000             # the waveform stand-in's card: 1.0 s windows ...
HOP_S = 0.25               # ... every 0.25 s


def _export(module, example, path, input_name, output_names, dynamic_axes):
    import warnings

    import torch

    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter, as inference/export.py uses it (one self-contained file); it warns
        # that it is deprecated and that a batch of 1 is traced
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", "Exporting a model to ONNX with a batch_size other than 1", UserWarning)
        torch.onnx.export(module.eval(), (example,), str(path), input_names=[input_name], output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=17, dynamo=False)


def _card(folder, name, onnx_path, inputs, outputs, audio) -> str:
    card = ModelCard(name=name, kind=VOICE_MODEL_KIND, model_id=f"{name}@{sha256(onnx_path)[:12]}", inputs=inputs,
                     outputs=outputs, onnx=onnx_path.name, onnx_sha256=sha256(onnx_path), format=CARD_FORMAT,
                     normalisation="stand-in", audio=audio)
    path = folder / f"{name}.json"
    card.save(path)
    return str(path)


def _wave_module(hidden: int = 8):
    import torch

    class WaveStandIn(torch.nn.Module):
        """(1, N) samples -> hidden_states (1, 8), logits (1, 3) in 0..1: statistics of 25 ms frame energies."""

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.proj, self.head = torch.nn.Linear(4, hidden), torch.nn.Linear(4, 3)

        def forward(self, signal):
            energy = signal.reshape(1, -1, 400).pow(2).mean(-1).add(1e-6).log()          # (1, frames)
            stats = torch.stack([energy.mean(-1), energy.std(-1), energy.amax(-1), energy.amin(-1)], -1)
            return self.proj(stats), torch.sigmoid(self.head(stats) / 4.0)

    return WaveStandIn()


WAVE_AUDIO = {"input": "signal", "kind": "waveform", "sample_rate": 16000, "window_s": 1.0, "hop_s": HOP_S,
              "normalisation": "zero_mean_unit_var", "embedding": {"output": "hidden_states"},
              "arousal": {"output": "logits", "start": 0, "range": [0, 1]},
              "dominance": {"output": "logits", "start": 1, "range": [0, 1]},
              "valence": {"output": "logits", "start": 2, "range": [0, 1]},
              "source": "stand-in", "terms": "test only"}


@pytest.fixture(scope="module")
def wave_model(tmp_path_factory):
    """(card path, folder): the waveform stand-in, its ONNX length dynamic ([1, 'time'], as audEERING's)."""
    import torch

    folder = tmp_path_factory.mktemp("voice_wave")
    onnx_path = folder / "wave_stand_in.onnx"
    _export(_wave_module(), torch.zeros(1, WINDOW), onnx_path, "signal", ["hidden_states", "logits"],
            {"signal": {1: "time"}})
    path = _card(folder, "wave_stand_in", onnx_path, [{"name": "signal", "shape": [1, WINDOW], "dtype": "float32"}],
                 [{"name": "hidden_states", "shape": [1, 8], "dtype": "float32"},
                  {"name": "logits", "shape": [1, 3], "dtype": "float32"}], WAVE_AUDIO)
    return path, folder


MEL_AUDIO = {"input": "log_mel", "kind": "log_mel", "sample_rate": 16000, "window_s": 0.975, "hop_s": 0.04,
             "normalisation": "mean_std", "mean": -3.0, "std": 2.0, "embedding": {"output": "embedding"},
             "valence": {"output": "va", "start": 0}, "arousal": {"output": "va", "start": 1}}


@pytest.fixture(scope="module")
def mel_model(tmp_path_factory):
    """The log-mel stand-in: (batch, 1, 96, 64) -> embedding (batch, 16), va (batch, 2) in [-1, 1]."""
    import torch

    class MelStandIn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(1)
            self.emb, self.va = torch.nn.Linear(64, 16), torch.nn.Linear(64, 2)

        def forward(self, x):
            bands = x.mean(dim=(1, 2))                                                   # (batch, 64)
            return self.emb(bands), torch.tanh(self.va(bands))

    folder = tmp_path_factory.mktemp("voice_mel")
    onnx_path = folder / "mel_stand_in.onnx"
    _export(MelStandIn(), torch.zeros(2, 1, 96, 64), onnx_path, "log_mel", ["embedding", "va"],
            {"log_mel": {0: "batch"}, "embedding": {0: "batch"}, "va": {0: "batch"}})
    return _card(folder, "mel_stand_in", onnx_path,
                 [{"name": "log_mel", "shape": ["batch", 1, 96, 64], "dtype": "float32"}],
                 [{"name": "embedding", "shape": ["batch", 16], "dtype": "float32"},
                  {"name": "va", "shape": ["batch", 2], "dtype": "float32"}], MEL_AUDIO)


def _direct(card_path, name, x):
    """The ONNX run directly with onnxruntime on an already prepared input."""
    import onnxruntime as ort

    card = load_card(card_path)
    return ort.InferenceSession(str(card.onnx_path)).run(None, {name: x.astype(np.float32)})


def _wave_expected(card_path, window):
    x = (window - window.mean()) / np.sqrt(window.var() + 1e-7)
    hidden, logits = _direct(card_path, "signal", x[None].astype(np.float32))
    a, d, v = (2.0 * logits[0] - 1.0).tolist()               # the card's range [0, 1] -> [-1, 1]
    return hidden[0], (v, a, d)


def _stream(cfg: AudioConfig, speech):
    stream = build_audio_stream(cfg)
    stream.set_format(conversions.AudioFormat(16000, 1, "S16LE"))
    results = []
    for k in range(0, len(speech) - 1024 + 1, 1024):
        results += stream.push(speech[k:k + 1024], 100.0 + k / 16000).windows
    return stream, results


def test_waveform_voice_card_is_the_audio_nodes_encoder(wave_model):
    """The card's window -> zero mean, unit variance -> the model -> hidden_states as the embedding,
    logits as arousal/dominance/valence rescaled from 0..1: equal to the ONNX run by hand."""
    card, _ = wave_model
    speech = speech_16k(3.0)
    stream, results = _stream(AudioConfig(audio_model=card, window=1.0, hop=HOP_S), speech)
    assert stream.encoder.model_id == load_card(card).model_id and stream.encoder.dim == 8
    assert len(results) == 1 + int((len(speech) // 1024 * 1024 - WINDOW) / (HOP_S * 16000))
    for r in results:
        end = int(round((r.end_time - 100.0) * 16000))
        hidden, vad = _wave_expected(card, speech[end - WINDOW:end])
        np.testing.assert_allclose(r.embedding, hidden, atol=1e-5)
        np.testing.assert_allclose(r.affect, vad, atol=1e-5)
    assert len({r.affect for r in results}) > 1          # the windows differ, so do the estimates


def test_log_mel_voice_card_is_the_audio_nodes_encoder(mel_model):
    """A log-mel card: the front end's log-mel of the window, (x - mean) / std, (1, 1, 96, 64)."""
    speech = speech_16k(2.0)
    _, results = _stream(AudioConfig(audio_model=mel_model, window=0.975, hop=0.04), speech)
    assert len(results) > 20
    for r in results[::7]:
        end = int(round((r.end_time - 100.0) * 16000))
        mel = (log_mel(speech[end - 15600:end], LogMelConfig()) + 3.0) / 2.0
        emb, va = _direct(mel_model, "log_mel", mel[None, None])
        np.testing.assert_allclose(r.embedding, emb[0], atol=1e-5)
        np.testing.assert_allclose(r.affect[:2], va[0], atol=1e-5)
        assert math.isnan(r.affect[2])                   # the model gives no dominance


def _edited(folder, edit, name="edited") -> str:
    data = json.loads((folder / "wave_stand_in.json").read_text())
    edit(data)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data))
    return str(path)


def _set(path, value):
    def edit(d):
        node = d
        for key in path[:-1]:
            node = node[key]
        if value is KeyError:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return edit


REFUSALS = [  # (edit of the good card, what the one line must say)
    (_set(["audio", "sample_rate"], 8000), "audio.sample_rate is 8000; allowed: 16000"),
    (_set(["audio", "kind"], "spectrogram"), "audio.kind is 'spectrogram'; allowed: waveform, log_mel"),
    (_set(["audio", "window_s"], 2.0), "input 'signal' has shape [1, 16000]; audio.kind 'waveform' and "
                                       "audio.window_s need (batch, 32000)"),
    (_set(["audio", "window_s"], 1.00001), "audio.window_s is 1.00001; allowed: a whole number of 16 kHz samples"),
    (_set(["audio", "hop_s"], 2.0), "audio.hop_s is 2.0; allowed: <= audio.window_s (1.0)"),
    (_set(["audio", "normalisation"], "mean_std"), "audio.normalisation is 'mean_std' for kind 'waveform'; "
                                                   "allowed: none, zero_mean_unit_var"),
    (_set(["audio", "input"], "audio"), "audio.input is 'audio'; allowed: the card's one input (['signal'])"),
    (_set(["audio", "valence"], {"output": "logit"}), "audio.valence is {'output': 'logit'}"),
    (_set(["audio", "valence"], {"output": "logits", "start": 3}), "audio.valence takes columns 3..4 of output "
                                                                   "'logits' (last axis 3)"),
    (_set(["audio", "arousal"], {"output": "logits", "start": 0, "stop": 2}), "audio.arousal takes 2 columns"),
    (_set(["audio", "valence"], {"output": "logits", "start": 2, "range": [1, 0]}), "audio.valence.range is [1, 0]"),
    (_set(["audio", "pooling"], "mean"), "unknown key(s) audio.pooling"),
    (_set(["audio", "mean"], 0.5), "audio.mean given, but kind 'waveform' with normalisation 'zero_mean_unit_var' "
                                   "does not use it"),
    (_set(["audio"], {}), "has no `audio` block"),
    (lambda d: [d["audio"].pop(k) for k in ("embedding", "valence", "arousal", "dominance")],
     "none of audio.embedding, audio.valence, audio.arousal, audio.dominance"),
    (_set(["inputs", 0, "shape"], [1, "time"]), "has shape [1, 'time']"),
]


@pytest.mark.parametrize("edit,text", REFUSALS, ids=[t[:40] for _, t in REFUSALS])
def test_a_card_that_cannot_work_is_refused_in_one_line(wave_model, edit, text):
    card = _edited(wave_model[1], edit)
    with pytest.raises(ConfigError) as err:
        build_audio_stream(AudioConfig(audio_model=card, window=1.0, hop=HOP_S))
    line = str(err.value)
    assert text in line and "\n" not in line and line.startswith("parameter 'audio_model': voice model card '"), line



@pytest.mark.parametrize("key,value,text", [
    ("log_mel", {"n_mels": 40}, "audio.kind 'log_mel' and audio.window_s need (batch, 96, 40) or (batch, 1, 96, 40)"),
    ("log_mel", {"n_mels": 64.5}, "audio.log_mel.n_mels is 64.5; allowed: a whole number"),
    ("log_mel", {"power": 3}, "audio.log_mel.power is 3.0; allowed: 1 (magnitude) or 2 (power)"),
    ("layout", "time_major", "audio.layout is 'time_major'; allowed: frames_by_mels, mels_by_frames"),
    ("mean", [0.0, 0.0], "audio.mean [0.0, 0.0] and audio.std [2.0]; allowed: one value each or 64")])
def test_a_log_mel_card_that_cannot_work_is_refused_in_one_line(mel_model, tmp_path, key, value, text):
    data = json.loads(pathlib.Path(mel_model).read_text())
    data["audio"][key] = value
    data["onnx"] = str(load_card(mel_model).onnx_path)
    path = tmp_path / "mel.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        build_audio_stream(AudioConfig(audio_model=str(path), window=0.975, hop=0.04))
    assert text in str(err.value) and "\n" not in str(err.value), err.value

def test_the_card_is_checked_against_the_onnx(wave_model):
    """Names and shapes the ONNX does not have: the backend's one-line refusal (model_card.check_model_io)."""
    for edit, text in [(_set(["outputs", 1, "shape"], [1, 4]), "output 'logits' has shape [1, 3] in the model"),
                       (_set(["outputs", 1, "name"], "scores"), "outputs are"),
                       (_set(["inputs", 0, "name"], "wav"), "inputs are ['signal'] in the model, ['wav'] in the card")]:
        with pytest.raises(ModelFileError) as err:
            build_audio_stream(AudioConfig(audio_model=_edited(wave_model[1], edit), window=1.0, hop=HOP_S))
        assert text in str(err.value) and "\n" not in str(err.value), err.value


def test_the_nodes_window_and_hop_must_be_the_cards(wave_model):
    card = wave_model[0]
    with pytest.raises(ConfigError, match=r"^parameter 'window' is 0.975; .* audio.window_s 1: set window: 1$"):
        build_audio_stream(AudioConfig(audio_model=card, hop=HOP_S))
    with pytest.raises(ConfigError, match=r"^parameter 'hop' is 0.04; .* audio.hop_s 0.25: set hop: 0.25 \(and "):
        build_audio_stream(AudioConfig(audio_model=card, window=1.0))


def test_another_kind_of_card_is_not_an_audio_model(wave_model):
    from emo_perception.paths import share_dir

    with pytest.raises(ConfigError, match="a 'expression_teacher' model card; allowed: 'logmel_stats'"):
        build_audio_stream(AudioConfig(audio_model=str(share_dir() / "models" / "expression_teacher.json")))


def test_the_engine_plan_sees_a_voice_card_with_its_fixed_shape(wave_model):
    """emo_engine's request: the card's fixed window (no log-mel calibration set for it)."""
    from emo_perception.inference.engine_cache import profile_shapes
    from emo_perception.runtime.build import audio_request

    request = audio_request(AudioConfig(audio_model=wave_model[0], window=1.0, hop=HOP_S))
    assert request.inputs == "voice windows" and request.max_batch == 1
    assert profile_shapes(load_card(request.card_path).inputs, (1, 1, 1)) == (("signal",) + ((1, WINDOW),) * 3,)


def test_spec_reads_every_key(wave_model):
    spec = voice_model_spec(load_card(wave_model[0]))
    assert (spec.kind, spec.window_samples, spec.hop_s, spec.embedding_dim) == ("waveform", WINDOW, HOP_S, 8)
    assert {k: (h.start, h.low, h.high) for k, h in spec.affect.items()} == {
        "arousal": (0, 0.0, 1.0), "dominance": (1, 0.0, 1.0), "valence": (2, 0.0, 1.0)}
    assert (spec.source, spec.terms) == ("stand-in", "test only")


def test_the_affect_travels_in_the_message():
    msg = conversions.audio_embedding_to_msg(AudioResult(2.5, np.ones(8, np.float32), 0.9, -20.0,
                                                         (0.25, -0.5, math.nan)), "m@1", 1.0)
    frame = conversions.audio_frame_from_msg(msg)
    assert frame.affect[:2] == (0.25, -0.5) and math.isnan(frame.affect[2])
    plain = conversions.audio_frame_from_msg(conversions.audio_embedding_to_msg(
        AudioResult(2.5, np.ones(8, np.float32), 0.9, -20.0), "logmel_stats@1", 1.0))
    assert plain.affect == ()


def _face(tid, v, a):
    return FaceResult(tid, (0, 0, 10, 10), 0.9, 1, np.zeros(4, np.float32), np.zeros(7, np.float32), v, a)


def test_prior_fusion_moves_a_heard_face_towards_the_voice_models_estimate():
    """Voice probability p, voice model (v, a): valence += 0.3 p (v - face), arousal += 0.5 p (a - face)
    in place of the loudness cue; with nobody in view p (v, a); labelled."""
    fusion = FusionPipeline(PriorMode())
    out = []
    for k in range(20):     # (a stream that joins is fused from max_wait after its first stamp)
        t = 10.0 + 0.04 * k
        fusion.add_face(FaceFrame(t, "cam", "face@1", [_face("f1", 0.0, 0.0)]))
        fusion.add_audio(AudioFrame(t, "voice@9", np.zeros(8, np.float32), 1.0, -20.0, (0.8, 0.6, -0.2)))
        out += fusion.ready()
    heard = [p for s in out for p in s.people if p.track_id == "f1" and p.voice]
    assert len(heard) > 5
    assert heard[-1].valence == pytest.approx(0.3 * 0.8) and heard[-1].arousal == pytest.approx(0.5 * 0.6)
    assert fusion.model_id == "prior+voice@9"

    alone = FusionPipeline(PriorMode())
    steps = []
    for k in range(5):
        alone.add_audio(AudioFrame(20.0 + 0.04 * k, "voice@9", np.zeros(0, np.float32), 0.5, -20.0,
                                   (-0.4, 0.7, math.nan)))
        steps += alone.ready()
    voice_only = [p for s in steps for p in s.people]
    assert voice_only and all((p.track_id, p.valence, p.arousal, p.confidence) == ("", pytest.approx(0.5 * -0.4),
                                                                                   pytest.approx(0.5 * 0.7), 0.125)
                              for p in voice_only)


def test_prior_fusion_without_voice_affect_is_as_before():
    """An encoder without affect (or NaN valence/arousal): the loudness cue, label 'prior'."""
    for affect in [(), (math.nan, math.nan, math.nan)]:
        fusion = FusionPipeline(PriorMode())
        out = []
        for k in range(20):
            t = 10.0 + 0.04 * k
            fusion.add_face(FaceFrame(t, "cam", "face@1", [_face("f1", 0.0, 0.0)]))
            fusion.add_audio(AudioFrame(t, "logmel_stats@1", np.zeros(8, np.float32), 1.0, -15.0, affect))
            out += fusion.ready()
        p = [p for s in out for p in s.people if p.voice][-1]
        assert (p.valence, p.arousal) == (0.0, pytest.approx(0.3)) and fusion.model_id == "prior"




def test_nan_from_the_voice_model_is_counted_and_warned(tmp_path):
    """A model whose valence is NaN for some windows (the log of a negative sample): counted, WARN in health."""
    import torch

    from emo_perception.core.health import WARN

    class Broken(torch.nn.Module):
        def forward(self, signal):
            return torch.log(signal[:, -2:])

    onnx_path = tmp_path / "broken.onnx"
    _export(Broken(), torch.zeros(1, WINDOW), onnx_path, "signal", ["va"], {})
    card = _card(tmp_path, "broken", onnx_path, [{"name": "signal", "shape": [1, WINDOW], "dtype": "float32"}],
                 [{"name": "va", "shape": [1, 2], "dtype": "float32"}],
                 {"input": "signal", "kind": "waveform", "sample_rate": 16000, "window_s": 1.0, "hop_s": HOP_S,
                  "valence": {"output": "va", "start": 0}, "arousal": {"output": "va", "start": 1}})
    stream, results = _stream(AudioConfig(audio_model=card, window=1.0, hop=HOP_S), speech_16k(4.0))
    bad = sum(not np.isfinite(r.affect[:2]).all() for r in results)
    assert bad > 0 and stream.counters()["voice_model_non_finite"] == bad
    level, message = stream.health()
    assert level == WARN and f"NaN/inf in {bad} windows" in message

def test_import_audeering_shaped_model_with_its_preset(tmp_path):
    """`emo_import_model <onnx> --preset audeering-w2v2-dim`: a stand-in with audEERING's names and sizes
    (signal (1, time) -> hidden_states (1, 1024), logits (1, 3) = arousal, dominance, valence in 0..1)
    becomes a card the audio node runs at 2 s windows every 0.5 s."""
    import torch

    from emo_perception.cli import import_model

    onnx_path = tmp_path / "model.onnx"
    _export(_wave_module(1024), torch.zeros(1, WINDOW), onnx_path, "signal", ["hidden_states", "logits"],
            {"signal": {1: "time"}})
    assert import_model.main([str(onnx_path), "--preset", "audeering-w2v2-dim", "--out", str(tmp_path / "w.json")]) == 0
    card = load_card(tmp_path / "w.json")
    assert card.kind == VOICE_MODEL_KIND and card.inputs[0]["shape"] == [1, 32000]
    assert "CC BY-NC-SA 4.0" in card.audio["terms"]
    speech = speech_16k(3.0)
    _, results = _stream(AudioConfig(audio_model=card.path, window=2.0, hop=0.5), speech)
    assert len(results) == 1 + int((len(speech) // 1024 * 1024 - 32000) / 8000) == 2
    for r in results:
        end = int(round((r.end_time - 100.0) * 16000))
        hidden, vad = _wave_expected(card.path, speech[end - 32000:end])
        assert r.embedding.shape == (1024,) and np.allclose(r.affect, vad, atol=1e-5)


def test_import_generic_voice_form_gives_the_hand_written_card(wave_model, tmp_path):
    from emo_perception.cli import import_model

    card, folder = wave_model
    args = [str(folder / "wave_stand_in.onnx"), "--voice-input", "waveform", "--window", "1", "--hop", str(HOP_S),
            "--normalisation", "zero_mean_unit_var", "--range", "0", "1", "--out", str(tmp_path / "g.json"),
            "--outputs", "embedding:hidden_states,arousal:logits[0],dominance:logits[1],valence:logits[2]"]
    assert import_model.main(args) == 0
    made, by_hand = voice_model_spec(load_card(tmp_path / "g.json")), voice_model_spec(load_card(card))
    assert (made.kind, made.input_shape, made.embedding, made.affect) == \
        (by_hand.kind, by_hand.input_shape, by_hand.embedding, by_hand.affect)


def test_import_refuses_what_does_not_fit_in_one_line(wave_model, tmp_path, capsys):
    from emo_perception.cli import import_model

    onnx_path = str(wave_model[1] / "wave_stand_in.onnx")
    for args, text in [
            (["--preset", "audeering-w2v2-dim"], "output 'hidden_states' has shape [1, 8]; the preset expects its "
                                                 "last axis to be 1024"),
            (["--voice-input", "log_mel", "--window", "0.975", "--hop", "0.04", "--outputs", "embedding:hidden_states"],
             "a log_mel voice model of 0.975 s windows needs float32 [N, 96, 64]"),
            (["--voice-input", "waveform", "--window", "1", "--hop", "0.5", "--outputs", "valence:scores[0]"],
             "--outputs names 'scores' for valence"),
            (["--voice-input", "waveform", "--window", "1", "--hop", "0.5", "--outputs", "mood:logits[0]"],
             "--outputs item 'mood:logits[0]' is not understood")]:
        assert import_model.main([onnx_path, "--out", str(tmp_path / "x.json"), *args]) == 1
        err = capsys.readouterr().err.strip()
        assert text in err and "\n" not in err, err

@pytest.mark.ros
def test_audio_node_publishes_the_voice_models_embedding_and_affect(wave_model):
    """The audio node process loads the card (audio_model, window, hop as the card says) and publishes
    every window's hidden_states and valence/arousal/dominance; the fusion node (prior) turns the
    voice into a voice-only estimate from the voice model's valence and arousal, labelled with it; the
    offline assembly (runtime/offline.py) fed the same messages gives the same AffectArrays."""
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo
    from emo_perception_msgs.msg import AffectArray, AudioEmbedding
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy

    from emo_perception.nodes.node_support import INFO_QOS
    from node_harness import Harness, NodeProcess

    card, _ = wave_model
    model_id = load_card(card).model_id
    audio = NodeProcess("audio_embedding_node", "-p", f"audio_model:={card}", "-p", "window:=1.0", "-p",
                        f"hop:={HOP_S}", "-p", "input_reliability:=reliable")
    fusion = NodeProcess("fusion_node", "-p", f"audio_hop:={HOP_S}")
    h = Harness()
    reliable = QoSProfile(depth=200, reliability=QoSReliabilityPolicy.RELIABLE)
    # what the node will decode: the speech as 16-bit PCM
    pcm = conversions.audio_bytes_to_mono(conversions.mono_to_audio_bytes(speech_16k(4.0)),
                                          conversions.AudioFormat(16000, 1, "S16LE"))
    try:
        out = h.collect(AudioEmbedding, "audio/embeddings")
        affect = h.collect(AffectArray, "affect")
        info = h.node.create_publisher(AudioInfo, "audio_info", INFO_QOS)
        pub = h.node.create_publisher(AudioDataStamped, "audio_stamped", reliable)
        h.wait_for(lambda: pub.get_subscription_count() > 0 and info.get_subscription_count() > 0, 60, "audio node")
        # the fusion node's subscription (the harness's own is the other) and its output, before any audio
        h.wait_for(lambda: h.node.count_subscribers("audio/embeddings") >= 2 and h.node.count_publishers("affect") >= 1,
                   60, "fusion node")
        time.sleep(0.5)              # (the graph is seen here; the two node processes match each other too)
        info_msg = AudioInfo(channels=1, sample_rate=16000, sample_format="S16LE", coding_format="wave")
        info.publish(info_msg)
        time.sleep(0.3)
        sent = [("audio_info", info_msg)]
        for k in range(0, len(pcm) - 1024 + 1, 1024):
            msg = AudioDataStamped()
            msg.header.stamp = conversions.seconds_to_stamp(100.0 + k / 16000)
            msg.audio.data = conversions.mono_to_audio_bytes(pcm[k:k + 1024])
            pub.publish(msg)
            sent.append(("audio", msg))
            time.sleep(0.002)
        expected = 1 + int((len(pcm) // 1024 * 1024 - WINDOW) / (HOP_S * 16000))
        h.wait_for(lambda: len(out) >= expected, 30, f"{expected} embeddings (got {len(out)})")
        h.wait_for(lambda: any(p.track_id == "" for m in affect for p in m.people), 30, "a voice-only estimate")
    finally:
        h.close()
        audio.stop()
        fusion.stop()
    for m in out:
        assert m.model_id == model_id and m.window_duration == pytest.approx(1.0)
        end = int(round((conversions.stamp_to_seconds(m.header.stamp) - 100.0) * 16000))
        hidden, vad = _wave_expected(card, pcm[end - WINDOW:end])
        np.testing.assert_allclose(np.asarray(m.embedding), hidden, atol=1e-4)
        np.testing.assert_allclose(np.asarray(m.valence_arousal_dominance), vad, atol=1e-4)
    # voice-only: the voice model's valence and arousal x voice probability, of one of the embeddings
    voices = np.array([[m.voice_probability * m.valence_arousal_dominance[0],
                        m.voice_probability * m.valence_arousal_dominance[1]] for m in out])
    voice_only = [(m.model_id, p) for m in affect for p in m.people if p.track_id == ""]
    assert all(mid == f"prior+{model_id}" for mid, _ in voice_only)
    assert all(np.abs(voices - [p.valence, p.arousal]).max(axis=1).min() < 1e-5 for _, p in voice_only)
    # offline, the same configuration and messages: the same steps, bit for bit
    configs = load_configs()
    configs["audio_embedding_node"] = dataclasses.replace(configs["audio_embedding_node"], audio_model=card,
                                                          window=1.0, hop=HOP_S)
    configs["fusion_node"] = dataclasses.replace(configs["fusion_node"], audio_hop=HOP_S)
    offline = {round(f.step.time, 6): (f.model_id, [(p.track_id, p.valence, p.arousal, p.confidence)
                                                    for p in f.step.people])
               for f in OfflinePerception(configs).replay(sent)}
    live = {round(conversions.stamp_to_seconds(m.header.stamp), 6): (
        m.model_id, [(p.track_id, p.valence, p.arousal, p.confidence) for p in m.people]) for m in affect}
    assert len(live) > 20 and all(offline[t] == live[t] for t in live), sorted(set(live) - set(offline))[:3]
    assert "Traceback" not in audio.log() + fusion.log()
