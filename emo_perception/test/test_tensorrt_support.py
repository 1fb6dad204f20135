"""The logic around TensorRT, tested without it (issue: a line-by-line review against TensorRT 10.3):
shapes and engine keys shared with emo_engine, calibration batching and data checks, cache naming,
TF32, dtype and I/O checks, atomic and locked cache files, freeing models at cleanup, CUDA versions."""
import dataclasses
import pathlib
import re
import threading

import numpy as np
import pytest
import yaml

from emo_perception.inference import engine_cache as ec
from emo_perception.inference.backend_tensorrt import CALIBRATION_BATCH, _check
from emo_perception.runtime import load_configs
from emo_perception.runtime.build import backend_options, model_requests
from emo_perception.runtime import engine_plan
from node_harness import PARAMS

ROOT = pathlib.Path(__file__).resolve().parents[2]
ORIN = {"gpu_name": "Orin", "compute_capability": "8.7", "tensorrt_version": "10.3.0", "cuda_version": "12.6",
        "l4t_version": "36.4.0"}


def test_cuda_python_is_pinned_to_the_jetpack_6_cuda_major_and_a_driver_mismatch_says_so():
    robot = (ROOT / "requirements" / "robot.txt").read_text()
    assert re.search(r"^cuda-python>=12,<13$", robot, re.M)
    with pytest.raises(RuntimeError, match=r"cuda-python>=12,<13"):
        _check((35, None))                  # cudaErrorInsufficientDriver: cuda-bindings 13 on a CUDA 12 driver
    assert _check((0, "value")) == "value"


def _configs(tmp_path, bundles, **overrides):
    data = yaml.safe_load(PARAMS.read_text())
    for block, values in overrides.items():
        data[f"/**/{block}"]["ros__parameters"].update(values)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_configs(path)


def test_emo_engine_builds_exactly_the_engines_the_nodes_look_up(tmp_path, bundles):
    configs = _configs(tmp_path, bundles,
                       face_embedding_node={"backend": "tensorrt", "max_faces": 5, "tensorrt_precision": "int8",
                                            "detect_every": 3},
                       audio_embedding_node={"backend": "tensorrt", "audio_model": bundles["audio_encoder"].path},
                       fusion_node={"backend": "tensorrt", "mode": "gru", "fusion_model": bundles["fusion_gru"].path,
                                    "max_tracks": 12})
    from emo_perception.inference import load_card
    planned = engine_plan.plan(configs)
    assert [(r.node, r.card_path.stem, r.max_batch, r.image_size) for r, _ in planned] == [
        ("face_embedding_node", "expression_teacher", 5, None),
        ("face_embedding_node", "blazeface_full_range", 1, (576, 320)),     # the detector's canvas
        ("face_embedding_node", "blazeface_full_range", 1, (96, 96)),       # following faces (detect_every)
        ("audio_embedding_node", "audio_encoder", 1, None), ("fusion_node", "fusion_gru", 12, None)]
    for (req, tool_options), node_req in zip(planned, model_requests(configs)):
        # what the node's builder passes
        node_options = backend_options(configs[req.node], node_req.max_batch, image_size=node_req.image_size)
        card = load_card(req.card_path)
        tool_key = ec.engine_key(card, tool_options["precision"], tool_options["batch_range"], ORIN,
                                 image_size=tool_options["image_size"])
        node_key = ec.engine_key(card, node_options["precision"], node_options["batch_range"], ORIN,
                                 image_size=node_options["image_size"])
        assert tool_key.engine_path("c", card.name) == node_key.engine_path("c", card.name)
        assert tool_options["cache_dir"] == node_options["cache_dir"]
    detector = load_card(planned[1][0].card_path)
    canvas = (1, 3, 320, 576)
    assert planned[1][1]["batch_range"] == (1, 1, 1)          # the node detects one frame per call
    assert ec.profile_shapes(detector.inputs, planned[1][1]["batch_range"], image_size=(576, 320)) == \
        (("image", canvas, canvas, canvas),)
    assert planned[1][1]["precision"] == "fp16"
    with pytest.raises(ValueError, match="image_size"):
        ec.engine_key(detector, "fp16", (1, 1, 1), ORIN)
    # the prior mode and the untrained audio statistics load no network: the face node's remain, the
    # detector at its canvas and at the 96 px regions the defaults follow faces in (detect_every, detect_async)
    assert [(r.card_path.stem, r.image_size) for r, _ in engine_plan.plan(load_configs(PARAMS))] == \
        [("expression_teacher", None), ("blazeface_full_range", (576, 320)), ("blazeface_full_range", (96, 96))]


def test_engine_key_covers_tf32_workspace_cuda_l4t_and_calibration(bundles):
    card = bundles["face_encoder"]
    base = ec.engine_key(card, "fp16", (1, 1, 8), ORIN)
    variants = [ec.engine_key(card, "fp32", (1, 1, 8), ORIN), ec.engine_key(card, "fp16", (1, 1, 4), ORIN),
                ec.engine_key(card, "fp16", (1, 1, 8), {**ORIN, "cuda_version": "12.2"}),
                ec.engine_key(card, "fp16", (1, 1, 8), {**ORIN, "l4t_version": "36.3.0"}),
                ec.engine_key(card, "fp16", (1, 1, 8), ORIN, calibration_id="abc"),
                dataclasses.replace(base, workspace_bytes=2 << 30), dataclasses.replace(base, tf32=False)]
    assert len({base.digest()} | {v.digest() for v in variants}) == 1 + len(variants)
    assert base.tf32 and not ec.engine_key(card, "fp32", (1, 1, 8), ORIN).tf32    # fp32 means no TF32 on Orin
    assert "--noTF32" in ec.trtexec_command("m.onnx", "m.engine", base.shapes, "fp32")
    assert ec.parse_l4t_release("# R36 (release), REVISION: 4.0, GCID: 3, BOARD: generic") == "36.4.0"
    assert ec.cuda_version_text(12060) == "12.6"


def test_int8_calibration_batches_match_the_calibration_profile_for_every_input(bundles):
    gru = bundles["fusion_gru"]
    specs = {s["name"]: s for s in gru.inputs}
    assert specs["state"]["shape"][1] == "batch"                        # (layers, batch, hidden)
    n = 21
    samples = {}
    for name, spec in specs.items():
        shape = [n if d == "batch" else 1 if d == "time" else d for d in spec["shape"]]
        samples[name] = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    assert ec.check_calibration_data(gru, samples) == n
    batches = ec.calibration_batches(gru, samples, CALIBRATION_BATCH)
    assert len(batches) == n // CALIBRATION_BATCH       # every sample in a whole batch, none dropped silently
    fixed = {name: mn for name, mn, opt, mx in ec.calibration_shapes(gru.inputs, CALIBRATION_BATCH)}
    for b in batches:                                                   # all four inputs, at the profile's exact shape
        assert set(b) == set(specs) and all(b[name].shape == fixed[name] for name in specs)
        assert all(x.flags.c_contiguous and x.dtype == np.float32 for x in b.values())
    assert np.array_equal(batches[1]["state"], samples["state"][:, 8:16])


def test_calibration_data_of_the_wrong_kind_is_refused(bundles):
    faces = engine_plan.face_calibration_samples([])                     # {"face": (0, 1, 64, 64)}
    with pytest.raises(ValueError, match="model 'audio_encoder' takes .*log_mel.*--calibrate-audio"):
        ec.check_calibration_data(bundles["audio_encoder"], faces)
    with pytest.raises(ValueError, match="takes"):
        ec.check_calibration_data(bundles["audio_encoder"], {"log_mel": np.zeros((4, 1, 64, 96), np.float32)})
    ec.check_calibration_data(bundles["audio_encoder"], {"log_mel": np.zeros((4, 1, 96, 64), np.float32)})


def test_calibration_cache_is_keyed_by_model_and_data(tmp_path, bundles):
    card = bundles["expression_teacher"]
    data = {"face": np.random.default_rng(1).normal(size=(16, 1, 64, 64)).astype(np.float32)}
    a = ec.data_digest(ec.calibration_batches(card, data, 8))
    b = ec.data_digest(ec.calibration_batches(card, {"face": data["face"] * 0.5}, 8))
    assert a != b
    path_a = ec.calibration_cache_path(tmp_path, card, a)
    other_model = dataclasses.replace(card, onnx_sha256="f" * 64)
    assert path_a != ec.calibration_cache_path(tmp_path, card, b) != ec.calibration_cache_path(tmp_path, other_model, a)
    assert ec.latest_calibration_cache(tmp_path, card) is None
    path_a.write_bytes(b"cache")
    assert ec.latest_calibration_cache(tmp_path, card) == path_a
    assert ec.latest_calibration_cache(tmp_path, other_model) is None   # a changed model never reuses it


def test_timing_cache_is_written_atomically_under_a_lock_and_a_bad_one_is_ignored(tmp_path):
    path = tmp_path / "timing.cache"
    ec.atomic_write(path, b"good")
    with pytest.raises(TypeError):
        ec.atomic_write(path, "not bytes")                              # fails mid-write ...
    assert path.read_bytes() == b"good" and [p.name for p in tmp_path.iterdir()] == ["timing.cache"]   # ... intact

    warnings, made = [], []

    def create(blob):                                                   # IBuilderConfig.create_timing_cache's contract
        made.append(blob)
        return None if blob == b"corrupt" else ("cache", blob)
    assert ec.timing_cache_or_empty(create, b"corrupt", warnings.append) == ("cache", b"")
    assert warnings and "ignored" in warnings[0]
    assert ec.timing_cache_or_empty(create, b"fine", warnings.append) == ("cache", b"fine") and len(warnings) == 1

    counter = tmp_path / "n"
    counter.write_text("0")

    def bump():
        for _ in range(50):
            with ec.locked(counter):
                ec.atomic_write(counter, str(int(counter.read_text()) + 1).encode())
    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.read_text() == "200"


def test_engine_io_and_dtypes_are_checked_and_kept(bundles):
    card = bundles["fusion_gru"]
    io = {**{s["name"]: "INPUT" for s in card.inputs}, **{s["name"]: "OUTPUT" for s in card.outputs}}
    ec.check_engine_io(card, io)
    with pytest.raises(ValueError, match="do not match model card"):
        ec.check_engine_io(card, {**io, "state": "OUTPUT"})
    assert ec.numpy_dtype("DataType.HALF") == np.float16 and ec.numpy_dtype("FLOAT") == np.float32
    assert ec.numpy_dtype("DataType.INT64") == np.int64
    with pytest.raises(ValueError, match="outside the engine profile"):
        ec.check_input_shape("face", (9, 1, 64, 64), (1, 1, 64, 64), (8, 1, 64, 64))


@pytest.mark.ros
def test_node_cleanup_frees_its_models_now(tmp_path, bundles):
    """release() runs at cleanup (TensorRT: device buffers, stream, context, engine); shown on ONNX Runtime."""
    import rclpy
    from emo_perception.nodes.fusion_node import FusionNode
    ctx = rclpy.Context()
    rclpy.init(context=ctx, args=["--ros-args", "-p", "mode:=gru", "-p", f"fusion_model:={bundles['fusion_gru'].path}"])
    try:
        node = FusionNode(context=ctx)
        node.trigger_configure()
        model = node.pipeline.fusion.model
        assert model._session is not None
        node.trigger_cleanup()
        assert model._session is None and node.pipeline is None
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)


def test_tensorrt_options_route_build_progress_to_the_given_log():
    configs = load_configs(PARAMS)
    cfg = dataclasses.replace(configs["face_embedding_node"], backend="tensorrt")
    log = print
    assert backend_options(cfg, 8, log)["log"] is log
    assert backend_options(cfg, 8)["batch_range"] == (1, 1, 8)
