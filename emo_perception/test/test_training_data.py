"""emo_train's data side: the three on-disk layouts, the feature cache, bad input that is skipped
with a reason and counted, and configuration errors."""
import csv
import json
import os
import shutil

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emo_perception.recordings.media import Audio, write_clip
from emo_perception.runtime.params import ConfigError
from emo_perception.cli import train as emo_train
from emo_perception.training import config as train_config
from emo_perception.training.features import face_features
from emo_perception.training.sessions import (AFFECTNET_TO_TEACHER, read_affectnet, read_lab, read_recola)
from emo_perception.training.synthetic import FPS, RATE, background, session
from emo_perception.recordings.sample_media import astronaut_head


@pytest.mark.media
def test_recola_layout_reads_avec_partitions_and_both_gold_standards(generated_set):
    ds = read_recola(generated_set / "recola")
    assert [(s.name, s.split) for s in ds.sessions] == [("dev_1", "val"), ("train_1", "train")]
    s = ds.sessions[1]
    assert s.audio.name == "train_1.wav" and s.video.suffix == ".mp4"
    series = s.annotations.series[""]
    assert np.allclose(np.diff(series["time"]), 0.04)                      # 40 ms frames
    assert np.isfinite(series["valence"]).all() and np.isfinite(series["arousal"]).all()
    assert not np.allclose(series["valence"], series["arousal"])           # each from its own folder


@pytest.mark.media
def test_lab_layout_reads_sessions_splits_and_optional_parts(generated_set, tmp_path):
    ds = read_lab(generated_set / "lab")
    assert len(ds.sessions) == 8 and not ds.skipped
    assert [s.name for s in ds.sessions if s.split == "val"] == ["session_03", "session_07"]
    assert ds.sessions[2].audio is not None and ds.sessions[0].audio is None     # separate WAV / in the video
    root = tmp_path / "lab"
    shutil.copytree(generated_set / "lab" / "session_00", root / "a")
    (root / "a" / "annotations.csv").unlink()                    # unlabeled: faces for distillation only
    (root / "empty").mkdir()
    ds = read_lab(root, val_fraction=0.0)
    assert [s.name for s in ds.sessions] == ["a"] and ds.sessions[0].annotations is None
    assert ds.skipped == [("empty", "expected one video (.mp4|.mkv|.avi|.mov|.webm), found 0")]


def _affectnet(root):
    """AffectNet's layout: Manually_Annotated_Images/<dir>/<file> and training/validation.csv."""
    head, (fx, fy, fw, fh) = astronaut_head()
    rows = []
    for i, (code, v, a) in enumerate([(1, 0.8, 0.3), (0, 0.0, -0.1), (7, -0.3, 0.4), (10, -2, -2), (2, -2, -2),
                                      (6, -0.6, 0.7)]):
        rel = f"{i % 2}/img{i}.jpg"
        (root / "Manually_Annotated_Images" / str(i % 2)).mkdir(parents=True, exist_ok=True)
        img = head if i % 3 else np.ascontiguousarray(head[:, ::-1])
        cv2.imwrite(str(root / "Manually_Annotated_Images" / rel), img[:, :, ::-1])
        pts = np.zeros((68, 2))
        pts[36:42] = (fx + 0.3 * fw, fy + 0.4 * fh)
        pts[42:48] = (fx + 0.7 * fw, fy + 0.4 * fh + 0.4 * fw * np.tan(np.radians(10)))   # eyes rolled 10 deg
        rows.append({"subDirectory_filePath": rel, "face_x": fx, "face_y": fy, "face_width": fw, "face_height": fh,
                     "facial_landmarks": ";".join(f"{p:.2f}" for p in pts.reshape(-1)), "expression": code,
                     "valence": v, "arousal": a})
    for name, part in (("training.csv", rows[:4]), ("validation.csv", rows[4:])):
        with open(root / name, "w", newline="") as f:
            w = csv.DictWriter(f, list(rows[0]))
            w.writeheader()
            w.writerows(part)


def test_affectnet_unknown_values_codes_and_landmark_roll(tmp_path):
    _affectnet(tmp_path)
    ds = read_affectnet(tmp_path)
    assert len(ds.images) == 5 and ds.skipped == [("1/img3.jpg", "AffectNet code 10 (no face)")]
    happy, neutral, contempt = ds.images[:3]
    assert happy.expression == 3 and neutral.expression == 6 and contempt.expression == -1   # FER2013 order
    assert AFFECTNET_TO_TEACHER[6] == 0                                                       # anger -> angry
    assert np.isnan(ds.images[3].valence) and ds.images[3].split == "val"                     # -2: unknown
    assert happy.roll == pytest.approx(10, abs=0.5)


def test_face_stage_on_affectnet_distils_from_the_teacher_and_exports(tmp_path):
    _affectnet(tmp_path / "affectnet")
    args = ["face", "--quiet", "--data", f"affectnet:{tmp_path}/affectnet", "--set", f"out_dir={tmp_path}/runs",
            "--set", f"cache_dir={tmp_path}/cache", "--set", "batch_size=2", "--set", "epochs=2"]
    assert emo_train.main(args) == 0
    summary = json.loads((tmp_path / "runs" / "summary.json").read_text())
    assert summary["train_faces"] == 3 and summary["val_faces"] == 2
    assert summary["skipped_by_reason"] == {"AffectNet code 10": 1}
    assert summary["model_id"].startswith("face_encoder@")
    assert 0 <= summary["val"]["expression_accuracy"] <= 1                    # 2 val images with a hard label
    cached = tmp_path / "cache" / "affectnet-train-00000.images.npz"        # chunk 0 of the train split
    stamp = cached.stat().st_mtime_ns
    assert emo_train.main(args) == 0                                           # crops and teacher labels reused
    assert cached.stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / "runs" / "summary.json").read_text())["val"] == summary["val"]


@pytest.mark.media
def test_feature_cache_is_reused_and_rebuilt_when_code_model_or_media_change(generated_set, tmp_path):
    from emo_perception.training.data import face_config
    from emo_perception.training.sessions import Session

    src = generated_set / "lab" / "session_00" / "video.mp4"
    video = tmp_path / "v.mp4"
    shutil.copyfile(src, video)
    s = Session("s", "train", video)
    cfg = train_config.TrainConfig(data=[{"root": "x", "format": "lab"}])
    a = face_features(s, face_config(cfg, ""), tmp_path / "cache")
    path = tmp_path / "cache" / "s.faces.npz"
    stamp = path.stat().st_mtime_ns
    b = face_features(s, face_config(cfg, ""), tmp_path / "cache")
    assert path.stat().st_mtime_ns == stamp and np.array_equal(a["embedding"], b["embedding"])
    assert len(a["time"]) > 0 and str(a["model_id"]).startswith("expression_teacher@")
    os.utime(video, ns=(stamp, stamp + 10**9))                     # the media changed
    face_features(s, face_config(cfg, ""), tmp_path / "cache")
    assert path.stat().st_mtime_ns != stamp
    stamp = path.stat().st_mtime_ns
    face_features(s, face_config(cfg, "") .__class__(**{**face_config(cfg, "").__dict__, "detector_max_width": 512}),
                  tmp_path / "cache")                               # another configuration
    assert path.stat().st_mtime_ns != stamp


@pytest.mark.media
def test_a_second_face_model_runs_on_the_cached_detections_and_gives_what_detecting_again_gives(
        generated_set, tmp_path, bundles):
    import dataclasses

    from emo_perception.training.data import face_config
    from emo_perception.training.sessions import Session

    s = Session("s", "train", generated_set / "lab" / "session_02" / "video.mp4")
    cfg = face_config(train_config.TrainConfig(face_fps=5.0), "")
    other = dataclasses.replace(cfg, face_model=str(bundles["face_encoder"].path))
    from emo_perception.training import features

    notes = []
    features.progress_note = notes.append
    try:
        face_features(s, cfg, tmp_path / "cache", keep_crops=True)        # the face stage: the teacher
        face_features(s, cfg, tmp_path / "cache", keep_crops=True)        # loaded: nothing to say
    finally:
        features.progress_note = None
    assert len(notes) == 1 and notes[0].startswith("extracted faces.crops of s in "), notes
    record = tmp_path / "cache" / "s.detections.json"
    assert record.is_file()
    reused = face_features(s, other, tmp_path / "cache")               # the fusion stage: another model
    fresh = face_features(s, other, tmp_path / "fresh")
    assert str(reused["model_id"]) != str(face_features(s, cfg, tmp_path / "cache")["model_id"])
    assert sorted(reused) == sorted(fresh) and len(fresh["time"]) > 20
    for k in fresh:
        assert np.array_equal(reused[k], fresh[k], equal_nan=fresh[k].dtype.kind == "f"), k
    # the record is what the second run used (not a second detection): a box moved in it moves the
    # result
    data = json.loads(record.read_text())
    frame = next(f for f in data["frames"] if isinstance(f[1], list) and f[1])
    frame[1][0][0] += 3
    record.write_text(json.dumps(data))
    shutil.rmtree(tmp_path / "again", ignore_errors=True)
    shutil.copytree(tmp_path / "cache", tmp_path / "again", ignore=shutil.ignore_patterns("*.npz", "*.npy"))
    moved = face_features(s, other, tmp_path / "again")
    assert (moved["box"][:, 0] != fresh["box"][:, 0]).sum() >= 1
    # a record that does not fit the frames decoded now (fewer frames: another decoder) is dropped and
    # the session detected again, as if there were none
    data["frames"] = data["frames"][:-1]
    (tmp_path / "again" / "s.detections.json").write_text(json.dumps(data))
    (tmp_path / "again" / "s.faces.npz").unlink()
    again = face_features(s, other, tmp_path / "again")
    for k in fresh:
        assert np.array_equal(again[k], fresh[k], equal_nan=fresh[k].dtype.kind == "f"), k
    assert len(json.loads((tmp_path / "again" / "s.detections.json").read_text())["frames"]) == len(data["frames"]) + 1


@pytest.mark.media
def test_frames_detected_in_batches_and_the_landmarkers_blendshapes_on_the_same_cached_detections(
        generated_set, tmp_path):
    import dataclasses

    from emo_perception.core.face_landmarks import BLENDSHAPE_NAMES
    from emo_perception.training.data import face_config
    from emo_perception.training.sessions import Session

    s = Session("s", "train", generated_set / "lab" / "session_01" / "video.mp4")
    # the detector on every frame: with following (the defaults), the landmarker would follow the faces in
    # between by their landmarks, and its boxes are its own (the record still serves: the second-model test)
    cfg = dataclasses.replace(face_config(train_config.TrainConfig(face_fps=5.0), ""), detect_every=1,
                              detect_async=False)
    one = face_features(s, cfg, tmp_path / "one")
    three = face_features(s, cfg, tmp_path / "three", detect_batch=3)     # 3 frames per call, a short last one
    assert len(one["time"]) > 20 and sorted(one) == sorted(three)
    for k in one:
        assert np.array_equal(one[k], three[k], equal_nan=one[k].dtype.kind == "f"), k
    record = tmp_path / "one" / "s.detections.json"
    assert record.read_text() == (tmp_path / "three" / "s.detections.json").read_text()
    # the landmarker acts on what the detector found: the same record serves it (not detected again)
    stamp = record.stat().st_mtime_ns
    marked = face_features(s, dataclasses.replace(cfg, face_landmarks=True), tmp_path / "one")
    assert record.stat().st_mtime_ns == stamp
    assert marked["blendshapes"].shape == (len(one["time"]), len(BLENDSHAPE_NAMES)) and "blendshapes" not in one
    assert np.isfinite(marked["blendshapes"]).all(axis=1).mean() > 0.9      # the generated faces are confirmed
    assert np.array_equal(marked["box"], one["box"]) and np.array_equal(marked["embedding"], one["embedding"])


def _node_faces(video, cfg):
    """What the face node's pipeline gives frame by frame (one model call per frame)."""
    from emo_perception.recordings.media import T0, video_frames
    from emo_perception.runtime.build import build_face_pipeline

    pipeline, rows = build_face_pipeline(cfg), []
    for t, rgb in video_frames(video, cfg.processing_rate):
        rows += [(f.box, f.track_id, f.embedding, f.valence, f.arousal) for f in pipeline.process(rgb, T0 + t).faces]
    pipeline.release()
    return rows


def _extraction_on(device, generated_set, tmp_path, bundles=None):
    from emo_perception.training.data import audio_config, face_config
    from emo_perception.training.features import audio_features
    from emo_perception.training.sessions import Session

    s = Session("s", "train", generated_set / "lab" / "session_01" / "video.mp4")
    cfg = train_config.TrainConfig(data=[{"root": "x", "format": "lab"}], extract_device=device, face_fps=5.0)
    batched = face_features(s, face_config(cfg, ""), tmp_path / "batched", batch=16)     # 60 frames, ~75 faces
    node = _node_faces(s.video, face_config(train_config.TrainConfig(face_fps=5.0), ""))   # CPU, frame by frame
    assert len(node) == len(batched["time"]) > 20
    assert [tuple(r[0]) for r in node] == [tuple(b) for b in batched["box"]]
    assert [r[1] for r in node] == list(batched["track"])
    tol = 1e-5 if device == "cpu" else 1e-3
    np.testing.assert_allclose(np.stack([r[2] for r in node]), batched["embedding"], atol=tol)
    np.testing.assert_allclose(np.array([r[3:] for r in node]), batched["va"], atol=tol)
    if bundles is not None:     # a network audio encoder: windows batched the same way (on 4 s of the voice)
        import wave

        from emo_perception.recordings.media import audio_track

        samples = audio_track(s.video, rate=16000).samples[:4 * 16000].mean(axis=1).astype(np.int16)
        with wave.open(str(tmp_path / "voice.wav"), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(samples.tobytes())
        s = Session("s", "train", s.video, tmp_path / "voice.wav")
        one, many = (audio_features(s, audio_config(cfg, str(bundles["audio_encoder"].path)), tmp_path / f"a{b}",
                                    batch=b) for b in (1, 64))      # 64: the default extract_batch
        assert len(one["time"]) == len(many["time"]) > 50
        np.testing.assert_allclose(one["embedding"], many["embedding"], atol=tol)
        assert np.array_equal(one["mel"], many["mel"]) and np.array_equal(one["voice"], many["voice"])


@pytest.mark.media
def test_batched_extraction_gives_what_the_node_gives_frame_by_frame(generated_set, tmp_path, bundles):
    # the crops of consecutive frames go through the face model 16 at a time; boxes and tracks are the
    # node's exactly, the model outputs within float rounding of another batch size
    _extraction_on("cpu", generated_set, tmp_path, bundles)


@pytest.mark.media
def test_extraction_on_cuda_gives_what_the_cpu_gives(generated_set, tmp_path):
    import onnxruntime
    import torch

    if not torch.cuda.is_available() or "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("needs a CUDA GPU and onnxruntime-gpu")
    _extraction_on("cuda:0", generated_set, tmp_path)


def test_extract_device_cuda_without_a_gpu_is_a_configuration_error(tmp_path):
    import onnxruntime
    import torch

    from emo_perception.training import extract
    from emo_perception.training.distributed import World

    if torch.cuda.is_available() and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine can extract on CUDA")
    cfg = train_config.TrainConfig(data=[{"root": "x", "format": "lab"}], extract_device="cuda")
    with pytest.raises(ConfigError, match="parameter 'extract_device' is 'cuda', but .*allowed here: cpu, auto"):
        extract.resolve_device(cfg, World())
    assert extract.resolve_device(train_config.TrainConfig(), World()) == ("cpu", "")   # auto on a CPU run


def test_face_crops_are_streamed_from_memory_mapped_cache_files(tmp_path):
    from emo_perception.training.crops import Crops, Rows
    from emo_perception.training.face_stage import FaceStage
    from emo_perception.training.features import _cached

    rng = np.random.default_rng(0)
    made = [rng.integers(0, 256, (n, 64, 64), dtype=np.uint8) for n in (5, 0, 17, 9)]
    loaded = []
    for i, crops in enumerate(made):
        data = {"crop": crops, "logits": rng.normal(size=(len(crops), 7)).astype(np.float32)}
        first = _cached(tmp_path, f"chunk{i}", "images", {"i": i}, lambda d=data: d)
        again = _cached(tmp_path, f"chunk{i}", "images", {"i": i}, lambda: pytest.fail("recomputed"))
        for got in (first, again):     # computed or loaded: the crops come back from their own file
            assert isinstance(got["crop"], np.memmap) and np.array_equal(got["crop"], crops)
            assert not isinstance(got["logits"], np.memmap)
        loaded.append(again)
    assert len(list(tmp_path.glob("chunk2.images.*.crop.npy"))) == 1
    _cached(tmp_path, "chunk2", "images", {"i": "changed"}, lambda: {"crop": made[2][:3]})
    assert len(list(tmp_path.glob("chunk2.images.*.crop.npy"))) == 1      # the earlier key's file is gone
    rows = np.array([8, 1, 1, 3])
    pieces = [loaded[0]["crop"], loaded[1]["crop"], Rows(loaded[3]["crop"], rows), loaded[2]["crop"]]
    whole = np.concatenate([made[0], made[1], made[3][rows], made[2]])
    crops = Crops(pieces)
    assert len(crops) == len(whole) == 26 and crops.shape == whole.shape
    idx = rng.permutation(len(whole))
    assert np.array_equal(crops[idx], whole[idx]) and np.array_equal(crops[3:20], whole[3:20])
    with pytest.raises(IndexError):
        crops[[26]]
    # the face stage's items read their batches from those files, as from one array in memory
    parts = [(p, np.zeros((len(p), 7), np.float32), np.full((len(p), 2), np.nan)) for p in pieces]
    items = FaceStage._items(parts, augment=True)
    assert isinstance(items.crop, Crops)
    reference = FaceStage._items([(whole, np.zeros((26, 7), np.float32), np.full((26, 2), np.nan))], augment=True)
    reference.crop = whole
    a, b = items.batch(idx[:8], list(range(8))), reference.batch(idx[:8], list(range(8)))
    assert all(torch_equal(a[k], b[k]) for k in a)


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(torch.nan_to_num(a), torch.nan_to_num(b)))


def test_jobs_are_dealt_once_each_the_same_way_on_every_rank_largest_first():
    from emo_perception.training.extract import Job, share

    jobs = [Job(f"s{i}", size, None) for i, size in enumerate([5, 90, 40, 40, 10, 70, 3, 60])]
    shares = share(jobs, 3)
    assert shares == share(list(reversed(jobs)), 3)         # the order ranks read them in does not matter
    names = [j.name for sh in shares for j in sh]
    assert sorted(names) == sorted(j.name for j in jobs)    # each job on exactly one rank
    loads = [sum(j.size for j in sh) for sh in shares]
    assert loads == [105, 110, 103], loads                  # balanced by bytes (90 + 10 + 5, 70 + 40, 60 + 40 + 3)
    assert share(jobs, 1) == [sorted(jobs, key=lambda j: (-j.size, j.name))]
    assert [len(sh) for sh in share(jobs[:1], 2)] == [1, 0]  # more ranks than jobs: some wait at the barrier


def test_the_ranks_plan_is_what_the_face_stage_reads_in_affectnet_chunks(tmp_path, monkeypatch):
    # three ranks' shares of AffectNet's images, 2 a chunk, extracted in turn into one cache: the face
    # stage then finds every chunk it reads there and computes nothing (what the barrier waits for)
    from emo_perception.training import extract, face_stage, features
    from emo_perception.training.data import Skips, read_all

    monkeypatch.setattr(face_stage, "IMAGE_CHUNK", 2)
    _affectnet(tmp_path / "affectnet")
    cfg = train_config.load("face", overrides=[f"cache_dir={tmp_path}/cache"], data=[f"affectnet:{tmp_path}/affectnet"])
    jobs = extract.stage_jobs("face", cfg, read_all(cfg, Skips(verbose=False)))
    assert sorted(j.name for j in jobs) == ["affectnet-train-00000", "affectnet-train-00001", "affectnet-val-00000"]
    start = len(features.COMPUTED)
    for rank_share in extract.share(jobs, 3):
        assert len(rank_share) == 1
        rank_share[0].run(Skips(verbose=False))
    assert len(features.COMPUTED) - start == 3
    stage = face_stage.FaceStage(cfg, verbose=False)
    assert len(features.COMPUTED) - start == 3 and len(stage.train_set) == 3 and len(stage.val_set) == 2


def test_an_unusable_session_is_cached_with_its_reason(tmp_path):
    from emo_perception.training.features import SessionUnusable, _cached

    def broken():
        raise SessionUnusable("no decodable video frames in 'x.mp4'")

    for compute in (broken, lambda: pytest.fail("decoded again")):     # the second rank only loads
        with pytest.raises(SessionUnusable, match="no decodable video frames in 'x.mp4'"):
            _cached(tmp_path, "s", "faces", {"k": 1}, compute)
    assert _cached(tmp_path, "s", "faces", {"k": 2}, lambda: {"x": np.ones(2)})["x"].sum() == 2  # media changed


def _bad_sessions(root, generated_set):
    """A lab set with two good sessions and one of each kind of bad input."""
    lab = generated_set / "lab"
    for name in ("session_00", "session_01"):
        shutil.copytree(lab / name, root / name)
    ann = (lab / "session_00" / "annotations.csv").read_text()
    frames, audio, _, _ = session(4.0, seed=5, real_speech=True)
    pcm = (audio * 32767).astype(np.int16).reshape(-1, 1)
    (root / "corrupt").mkdir()
    (root / "corrupt" / "video.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 20000, np.uint8).tobytes())
    (root / "corrupt" / "annotations.csv").write_text(ann)
    (root / "no_face").mkdir()
    write_clip(root / "no_face" / "video.mp4", [background(480, 360, "coffee")] * 40, FPS, Audio(pcm, RATE))
    (root / "no_face" / "annotations.csv").write_text(ann)
    (root / "silent").mkdir()
    write_clip(root / "silent" / "video.mp4", frames, FPS, Audio(np.zeros_like(pcm), RATE))
    (root / "silent" / "annotations.csv").write_text(ann)
    shutil.copytree(lab / "session_02", root / "nan_labels")
    lines = ann.splitlines()
    (root / "nan_labels" / "annotations.csv").write_text("\n".join([lines[0]] + [f"{ln.split(',')[0]},nan,nan"
                                                                                  for ln in lines[1:]]) + "\n")
    shutil.copytree(lab / "session_04", root / "no_overlap")        # 12 s of media, annotation at 40-52 s
    (root / "no_overlap" / "annotations.csv").write_text("\n".join(
        [lines[0]] + [f"{float(ln.split(',')[0]) + 40:.2f},{ln.split(',', 1)[1]}" for ln in lines[1:]]) + "\n")
    (root / "no_video").mkdir()
    (root / "no_video" / "annotations.csv").write_text(ann)
    (root / "splits.csv").write_text("session,split\n" + "\n".join(
        f"{n},train" for n in ("session_00", "corrupt", "no_face", "silent", "nan_labels", "no_overlap", "no_video"))
        + "\nsession_01,val\n")


@pytest.mark.media
@pytest.mark.parametrize("stage", ["audio", "face"])
def test_bad_sessions_are_skipped_with_reasons_and_counted(stage, generated_set, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad") / "lab"
    root.mkdir()
    _bad_sessions(root, generated_set)
    out = root.parent / "runs"
    args = [stage, "--quiet", "--data", f"lab:{root}", "--set", f"out_dir={out}", "--set", f"cache_dir={out}/cache",
            "--set", "max_steps=4", "--set", "batch_size=8"]
    if stage == "face":      # the reasons do not depend on the frame rate; a third of the frames to extract
        args += ["--set", "face_fps=5"]
    assert emo_train.main(args) == 0
    s = json.loads((out / "summary.json").read_text())
    reasons = s["skipped_by_reason"]
    assert reasons["expected one video"] == 1
    if stage == "audio":
        assert reasons == {"expected one video": 1, "no usable audio": 1, "silent audio": 1, "no finite labels": 1,
                           "length mismatch": 1, "annotation past the media": 1}, s["skipped_items"]
    else:
        assert reasons == {"expected one video": 1, "media unusable": 1, "no face found": 1,
                           "no finite labels": 1, "length mismatch": 1, "annotation past the media": 1}, \
            s["skipped_items"]
        assert s["train_faces"] > 0 and s["val_sessions"] == 1


def test_configuration_errors_name_the_parameter_value_and_what_is_allowed(tmp_path):
    with pytest.raises(ConfigError, match="parameter 'lr' .*unknown.*did you mean 'lr'|parameter 'l_r'"):
        train_config.load("face", overrides=["l_r=0.1"], data=["lab:/x"])
    with pytest.raises(ConfigError, match="parameter 'va_loss' is 'l1'; allowed: ccc, mse"):
        train_config.load("face", overrides=["va_loss=l1"], data=["lab:/x"])
    with pytest.raises(ConfigError, match="parameter 'data' is empty"):
        train_config.load("fusion")
    with pytest.raises(ConfigError, match="parameter 'epochs' is 'many'; allowed: a int"):
        train_config.load("fusion", overrides=["epochs=many"], data=["lab:/x"])
    f = tmp_path / "train.yaml"
    f.write_text("common: {seed: 3, data: [{root: /d, format: recola}]}\nfusion: {chunk_s: 6.0}\naudio: {lr: 0.01}\n")
    cfg = train_config.load("fusion", f, ["seed=4"])
    assert (cfg.seed, cfg.chunk_s, cfg.lr, cfg.data[0]["format"]) == (4, 6.0, 1e-3, "recola")
    assert emo_train.main(["fusion", "--data", "lab:/does/not/exist", "--quiet"]) == 1


def test_grid_labels_keep_gaps_and_delay_and_features_are_held_like_the_aligner():
    from emo_perception.training.grid import grid_times, hold_on_grid, labels_at

    t = np.arange(0, 4.0001, 0.5)
    series = {"time": t, "valence": t / 4, "arousal": np.where((t > 1.2) & (t < 1.8), np.nan, -t / 4)}
    grid = grid_times(0.0, 4.0)
    assert len(grid) == 101 and grid[1] == pytest.approx(0.04)
    y = labels_at(series, grid)
    assert y[25, 0] == pytest.approx(0.25) and np.isnan(y[38, 1]) and np.isfinite(y[25, 1])   # 1.52 s: a gap
    delayed = labels_at(series, grid, delay=1.0)
    assert delayed[0, 0] == pytest.approx(0.25) and np.isnan(delayed[-1, 0])     # past the annotation: none
    rows = np.array([0.0, 0.1, 1.0])
    vals, present = hold_on_grid(rows, np.array([[1.0], [2.0], [3.0]]), grid)
    assert vals[1, 0] == 1.0 and vals[3, 0] == 2.0            # latest at or before (up to half a step after)
    assert present[5] and not present[10] and present[25]                        # held 0.2 s, then missing


@settings(max_examples=200, deadline=None)
@given(gaps_ms=st.lists(st.integers(0, 400), min_size=1, max_size=60), start_ms=st.integers(0, 200),
       hold_steps=st.integers(1, 8))
def test_hold_on_grid_takes_the_rows_the_fusion_aligner_takes(gaps_ms, start_ms, hold_steps):
    from emo_perception.core.alignment import PERIOD, StreamAligner
    from emo_perception.training.grid import grid_times, hold_on_grid

    stamps = (start_ms + np.cumsum(gaps_ms)) / 1000          # whole ms: ties and repeated stamps (gap 0) occur
    grid = grid_times(0.0, stamps[-1] + 0.5)
    hold = hold_steps * PERIOD
    aligner = StreamAligner(hold=hold)
    # the audio stream has a sample on every grid point from the first face on (a stream that starts
    # after another is fused from max_wait after its first stamp: the face starts first here, and its
    # gaps stay below gone_after), so every step with a face is emitted; fed in stamp order as live
    events = sorted([(s, 0, "face", i) for i, s in enumerate(stamps)] +
                    [(t, 1, "audio", k) for k, t in enumerate(grid) if t >= stamps[0]])
    steps = []
    for stamp, _, stream, item in events:
        aligner.add(stream, stamp, item)
        steps += aligner.ready()
    steps += aligner.ready(flush=True)
    face_at = {round(g.time / PERIOD): g.face for g in steps}
    vals, present = hold_on_grid(stamps, np.arange(len(stamps))[:, None], grid, hold=hold)
    for k, t in enumerate(grid):
        if t < min(face_at) * PERIOD - 1e-9:
            continue      # the aligner's grid starts at the grid point at or just before the first face
        expect = face_at.get(round(t / PERIOD))
        assert (int(vals[k, 0]) if present[k] else None) == expect, (t, stamps)


def test_annotated_people_are_matched_to_the_most_seen_tracks_left_to_right():
    from emo_perception.training.grid import person_tracks

    faces = {"track": np.array(["1", "2", "1", "2", "3", "1", "2"]),
             "box": np.array([[400, 0, 50, 50], [100, 0, 50, 50]] * 2 + [[250, 0, 40, 40]] + [[400, 0, 50, 50],
                                                                                           [100, 0, 50, 50]])}
    assert person_tracks(faces, ["bob", "alice"]) == {"alice": "2", "bob": "1"}    # 2 is on the left
    assert person_tracks(faces, [""]) == {"": "1"}


def test_masked_ccc_loss_is_one_minus_ccc_over_the_labelled_entries():
    import torch

    from emo_perception.core.metrics import ccc
    from emo_perception.nets.losses import masked_ccc_loss

    rng = np.random.default_rng(0)
    pred, gold = rng.normal(size=(2, 50, 2)), rng.normal(size=(2, 50, 2))
    gold[0, :10, 0] = np.nan
    loss = masked_ccc_loss(torch.tensor(pred), torch.tensor(gold), dim=1).item()
    expect = np.mean([1 - ccc(pred[b, np.isfinite(gold[b, :, j]), j], gold[b, np.isfinite(gold[b, :, j]), j])
                      for b in range(2) for j in range(2)])
    assert loss == pytest.approx(expect, abs=1e-6)


def test_the_shipped_recipe_file_configures_every_stage():
    from emo_perception.paths import share_dir

    path = share_dir() / "config" / "emo_train.yaml"
    for stage in ("face", "audio", "fusion"):
        cfg = train_config.load(stage, path)
        assert cfg.annotation_delay == 2.0 and cfg.data
    assert train_config.load("fusion", path).face_model.endswith("face_encoder.json")


# ------------------------------------------------------------------ data that cannot evaluate says so
def _lab(root, names, splits=None):
    """Session folders as the lab reader sees them (it reads no media: a file named video.mp4 will do)."""
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / "video.mp4").write_bytes(b"")
        (root / name / "annotations.csv").write_text("time,valence,arousal\n0.0,0.1,0.2\n0.04,0.1,0.2\n")
    if splits is not None:
        (root / "splits.csv").write_text("session,split\n" + "".join(f"{n},{s}\n" for n, s in splits))
    return root


def test_held_out_splits_that_cannot_evaluate_are_named_with_what_is_allowed(tmp_path, capsys):
    from emo_perception.training.data import Skips, read_all
    from emo_perception.training.sessions import NO_HELD_OUT, DatasetError, hashed_split

    # two sessions whose names the hash puts in train: nothing is held out
    assert [hashed_split(n, 0.25) for n in ("p01", "p02")] == ["train", "train"]
    root = _lab(tmp_path / "two", ["p01", "p02"])
    skips = Skips()
    read_all(train_config.TrainConfig(data=[{"root": str(root), "format": "lab"}]), skips)
    [line] = skips.warnings
    assert line.startswith(NO_HELD_OUT) and "p01, p02" in line and "splits.csv" in line and "0.0..0.9" in line
    assert f"emo_train: warning: {line}" in capsys.readouterr().err
    assert skips.summary()["warnings"] == [line]
    # another data set with a held-out split: nothing to say
    other = _lab(tmp_path / "other", ["q1"], [("q1", "val")])
    skips = Skips(verbose=False)
    read_all(train_config.TrainConfig(data=[{"root": str(root), "format": "lab"},
                                            {"root": str(other), "format": "lab"}]), skips)
    assert skips.warnings == []
    # splits.csv naming a session the root does not have (a typo): an error, with the likely one
    root = _lab(tmp_path / "typo", ["session_a", "session_b"], [("session_a", "train"), ("sesion_b", "val")])
    with pytest.raises(DatasetError, match=r"splits.csv names session 'sesion_b' that .*typo does not have; "
                                           r"did you mean 'session_b'\?; its sessions: session_a, session_b"):
        read_lab(root)
    # a split that does not exist names the session, the line and what is allowed
    root = _lab(tmp_path / "bad", ["a"], [("a", "holdout")])
    with pytest.raises(DatasetError, match=r"splits.csv:2: session 'a' has split 'holdout'; allowed: train, val, test"):
        read_lab(root)
    # split test: neither trained nor evaluated, said with the session's name; an unnamed session too
    root = _lab(tmp_path / "test", ["a", "b", "c"], [("a", "train"), ("b", "test")])
    ds = read_lab(root)
    assert {s.name: s.split for s in ds.sessions} == {"a": "train", "b": "test", "c": "val"}
    unnamed, test = ds.warnings
    assert "splits.csv does not name c: split by the hash of the name (val_fraction 0.25): c val" in unnamed
    assert "session b in split test (splits.csv): emo_train neither trains nor evaluates on test" in test
    assert "give them split train or val" in test


def test_generate_takes_its_sizes_as_settings_and_rejects_unknown_ones(tmp_path, capsys):
    assert emo_train.main(["generate", "--out", str(tmp_path / "g"), "--set", "second=12"]) == 1
    assert "parameter 'second' (--set) is unknown; did you mean 'seconds'?" in capsys.readouterr().err
    assert emo_train.main(["generate", "--out", str(tmp_path / "g"), "--set", "sessions=0"]) == 1
    assert "parameter 'sessions' is 0; allowed: 1..1000" in capsys.readouterr().err
    assert emo_train.main(["generate", "--set", "seconds=12"]) == 1
    assert "parameter 'out' is empty" in capsys.readouterr().err
    assert emo_train.main(["generate", "--out", str(tmp_path / "g"), "--data", "lab:/x"]) == 1
    assert "--data has no effect on generate" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()
    f = tmp_path / "gen.yaml"
    f.write_text("common: {lr: 0.1}\ngenerate: {sessions: 3, seconds: 5}\n")
    cfg = train_config.load_generate(f, ["recola_sessions=0"], out=str(tmp_path / "g"))
    assert (cfg.sessions, cfg.seconds, cfg.recola_sessions, cfg.val_every) == (3, 5.0, 0, 4)
    # a stage's own block and --set take only what has an effect on the stage (common: takes any)
    with pytest.raises(ConfigError, match="parameter 'audio_model' \\(--set\\) has no effect on stage 'audio'; "
                                          "it is used by: fusion"):
        train_config.load("audio", overrides=["audio_model=egemaps"], data=["lab:/x"])
    f.write_text("common: {chunk_s: 4.0}\nface: {chunk_s: 4.0}\n")
    assert train_config.load("fusion", f, data=["lab:/x"]).chunk_s == 4.0
    with pytest.raises(ConfigError, match="parameter 'chunk_s' .*: face\\) has no effect on stage 'face'"):
        train_config.load("face", f, data=["lab:/x"])
    assert emo_train.main(["audio", "--out", str(tmp_path / "g"), "--data", "lab:/x"]) == 1
    assert "--out is for generate" in capsys.readouterr().err


@pytest.mark.media
def test_generate_writes_the_sizes_it_is_given(tmp_path, capsys):
    out = tmp_path / "g"
    assert emo_train.main(["generate", "--out", str(out), "--set", "sessions=2", "--set", "seconds=2",
                           "--set", "recola_sessions=0", "--set", "val_every=2"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert (made["lab_sessions"], made["lab_val_sessions"], made["recola"], made["seconds"]) == (2, 1, None, 2.0)
    ds = read_lab(out / "lab")
    assert [(s.name, s.split) for s in ds.sessions] == [("session_00", "train"), ("session_01", "val")]
    assert ds.sessions[0].annotations.span() == pytest.approx((0.0, 2.0)) and not ds.warnings
    assert not (out / "recola").exists()


@pytest.mark.media
def test_a_held_out_split_that_was_all_skipped_is_a_warning_and_epochs_count_steps(generated_set, tmp_path):
    root = tmp_path / "lab"
    for name in ("session_00", "session_01"):
        shutil.copytree(generated_set / "lab" / name, root / name)
    (root / "broken").mkdir()                        # held out, but its video does not decode
    (root / "broken" / "video.mp4").write_bytes(b"not a video")
    shutil.copyfile(root / "session_00" / "annotations.csv", root / "broken" / "annotations.csv")
    (root / "splits.csv").write_text("session,split\nsession_00,train\nsession_01,train\nbroken,val\n")
    out = tmp_path / "runs"
    assert emo_train.main(["audio", "--quiet", "--data", f"lab:{root}", "--set", f"out_dir={out}", "--set",
                           f"cache_dir={out}/cache", "--set", "max_steps=3", "--set", "batch_size=8"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["val"] == {} and s["skipped_by_reason"] == {"no usable audio": 1}
    assert s["warnings"] == ["no held-out data left: every held-out session or image was skipped (see skipped_items), "
                             "so nothing was evaluated and 'val' is empty"]
    # 3 steps of an epoch of 552 windows / 8 = 69 steps: a fraction of an epoch, not 0
    assert s["steps"] == 3 and s["steps_per_epoch"] == s["train_windows"] // 8 > 3
    assert s["epochs"] == round(3 / s["steps_per_epoch"], 3) > 0
