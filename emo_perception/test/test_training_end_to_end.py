"""emo_train on the generated set (real faces and speech, targets defined by cues put into them):
face, audio and fusion stages, the exported bundle running in the nodes with mode gru; an exact
resume after a kill; DDP on CPU with two gloo processes (shared extraction, the same weights)."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import yaml

from emo_perception.cli import train as emo_train
from emo_perception.training.loop import read_metrics

pytestmark = pytest.mark.media


def _train(stage, data, out, *sets):
    args = [stage, "--quiet", "--set", f"out_dir={out}/{{stage}}", "--set", f"cache_dir={out.parent}/cache"]
    for d in data:
        args += ["--data", d]
    for s in sets:
        args += ["--set", s]
    assert emo_train.main(args) == 0
    return json.loads((out / stage / "summary.json").read_text())


@pytest.fixture(scope="module")
def trained(generated_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "runs"
    data = [f"lab:{generated_set}/lab", f"recola:{generated_set}/recola"]
    # 3 epochs: valence CCC 0.06-0.92 over seeds; 10: 0.77-0.99 (evaluated at epochs 5 and 10)
    face = _train("face", data, out, "epochs=10", "eval_every_epochs=5")
    audio = _train("audio", data, out, "max_steps=60", "batch_size=32")
    fusion = _train("fusion", data, out, "epochs=20", "batch_size=8", "chunk_s=4", "chunk_hop_s=1",
                    f"face_model={face['card']}", f"audio_model={audio['card']}")
    return {"face": face, "audio": audio, "fusion": fusion, "out": out, "data": data}


def test_three_stages_train_export_and_beat_the_constant_and_prior_on_held_out_sessions(trained):
    face, audio, fusion = trained["face"], trained["audio"], trained["fusion"]
    for s in (face, audio, fusion):
        assert s["skipped"] == 0, s["skipped_items"]
    assert face["val_sessions"] == 3 and fusion["val_sequences"] == 3     # lab session_03, _07, RECOLA dev_1
    card = json.loads(pathlib.Path(fusion["card"]).read_text())
    # the fusion card names the embeddings it was trained on
    assert card["model_args"]["face_model_id"] == face["model_id"]
    assert card["model_args"]["audio_model_id"] == audio["model_id"]
    # what the face and voice cues carry (synthetic.py): valence from the face, arousal from the voice
    assert face["val"]["ccc_valence"] > 0.3, face["val"]
    assert audio["val"]["ccc_arousal"] > 0.2, audio["val"]
    base = fusion["baselines"]
    # held-out CCC through the fusion node's own pipeline, on the exported ONNX
    assert base["gru_runtime"]["ccc_mean"] > base["prior"]["ccc_mean"] + 0.2, base
    assert base["gru_runtime"]["ccc_mean"] > base["constant"]["ccc_mean"] + 0.3, base
    assert abs(base["gru_runtime"]["ccc_mean"] - fusion["val"]["ccc_mean"]) < 0.05   # runtime == training eval
    # each modality carries its own dimension: removing it costs that dimension
    assert fusion["val_without_voice"]["ccc_arousal"] < fusion["val"]["ccc_arousal"] - 0.1
    assert fusion["val_without_face"]["ccc_valence"] < fusion["val"]["ccc_valence"] - 0.1
    assert set(fusion["val_per_session"]) == {f"{n}/ccc_{d}" for n in ("session_03", "session_07", "dev_1")
                                              for d in ("valence", "arousal")}
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(trained["out"] / "fusion" / "tensorboard")).Reload()
    assert {"train/loss", "val/ccc_mean"} <= set(events.Tags()["scalars"])
    assert len(events.Scalars("train/loss")) == fusion["steps"]
    rows = read_metrics(trained["out"] / "fusion")
    assert {r["split"] for r in rows} == {"train", "val"} and rows[-1]["step"] == fusion["steps"]
    # eval_every_epochs=5: the face stage evaluated at epochs 5 and 10, its summary is the last of them
    face_val = [r for r in read_metrics(trained["out"] / "face") if r["split"] == "val"]
    assert sorted({r["epoch"] for r in face_val}) == [5, 10]
    assert {r["name"]: r["value"] for r in face_val if r["epoch"] == 10}["ccc_mean"] == \
        pytest.approx(face["val"]["ccc_mean"], abs=1e-7)


@pytest.mark.ros
def test_exported_bundle_runs_in_the_nodes_with_mode_gru(trained, generated_set, tmp_path):
    from emo_perception.recordings.annotations import read_annotations
    from emo_perception.eval.from_media import media_to_bag
    from emo_perception.eval.live import evaluate_live

    session = generated_set / "lab" / "session_03"
    bag = tmp_path / "held_out"
    media_to_bag(session / "video.mp4", bag, annotations=read_annotations(session / "annotations.csv"))
    from emo_perception.paths import default_params_file

    params = yaml.safe_load(default_params_file().read_text())
    params["/**/face_embedding_node"]["ros__parameters"]["face_model"] = trained["face"]["card"]
    params["/**/audio_embedding_node"]["ros__parameters"]["audio_model"] = trained["audio"]["card"]
    fusion = params["/**/fusion_node"]["ros__parameters"]
    fusion["mode"], fusion["fusion_model"] = "gru", trained["fusion"]["card"]
    path = tmp_path / "trained.yaml"
    path.write_text(yaml.safe_dump(params))
    result, _, _ = evaluate_live(bag, path)
    assert len(result.frames) > 100
    assert {f.mode for f in result.frames} == {"gru"}
    assert {f.model_id for f in result.frames} == {trained["fusion"]["model_id"]}
    assert any(p.track_id and p.face and p.voice for f in result.frames for p in f.step.people)


def _fusion_args(trained, out, *extra):
    args = ["fusion", "--quiet", "--set", f"out_dir={out}", "--set", f"cache_dir={trained['out'].parent}/cache",
            "--set", f"face_model={trained['face']['card']}", "--set", f"audio_model={trained['audio']['card']}",
            "--set", "epochs=4", "--set", "batch_size=8", "--set", "chunk_s=4", "--set", "chunk_hop_s=1",
            "--set", "runtime_baselines=false", "--set", "checkpoint_every=3"]
    for d in trained["data"]:
        args += ["--data", d]
    return args + list(extra)


# 56 chunks of 4 s every 1 s, 4 per batch: 14 steps per epoch, so a kill at step 5-13 is mid-epoch
# (checkpoints every 3 steps): a window of 9 steps, each tens of ms, against a 50 ms poll
RESUME = ("--set", "batch_size=4", "--set", "epochs=2", "--set", "chunk_hop_s=1")


def test_resume_after_a_kill_mid_epoch_ends_with_the_same_metrics(trained, tmp_path):
    whole = tmp_path / "whole"
    assert emo_train.main(_fusion_args(trained, whole, *RESUME)) == 0
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "emo_perception.cli.train"] + _fusion_args(trained, killed, *RESUME)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    steps = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if (killed / "metrics.csv").is_file():
            steps = len({r["step"] for r in read_metrics(killed) if r["split"] == "train"})   # 3 rows a step
            if steps >= 5:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 5 <= steps < 14, f"killed at step {steps}"
    ck = __import__("torch").load(killed / "checkpoint.pt", weights_only=True)
    assert 0 < ck["batch"], "the checkpoint the run resumes from is mid-epoch"
    assert emo_train.main(_fusion_args(trained, killed, *RESUME, "--resume")) == 0
    a = json.loads((whole / "summary.json").read_text())
    b = json.loads((killed / "summary.json").read_text())
    assert a["steps"] == b["steps"]
    for k, v in a["val"].items():
        assert b["val"][k] == pytest.approx(v, abs=1e-6), k
    ra = [(r["step"], r["split"], r["name"], r["value"]) for r in read_metrics(whole)]
    rb = [(r["step"], r["split"], r["name"], r["value"]) for r in read_metrics(killed)]
    assert len(ra) == len(rb)
    for x, y in zip(ra, rb):
        assert x[:3] == y[:3] and y[3] == pytest.approx(x[3], abs=1e-6)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = [EventAccumulator(str(d / "tensorboard")).Reload().Scalars("train/loss") for d in (whole, killed)]
    assert [e.step for e in tb[1]] == [e.step for e in tb[0]]      # the killed run's tail was purged
    assert [e.value for e in tb[1]] == pytest.approx([e.value for e in tb[0]], abs=1e-6)


def test_two_ranks_extract_each_session_once_and_train_what_one_process_trains(trained, generated_set, tmp_path):
    import collections

    import numpy as np
    import torch

    # two generated sessions, linked: the cache keys name the media files themselves, so the one-process
    # run finds the features this module's one-process runs made (the audio stage's log-mel windows, the
    # fusion stage's teacher faces of the held-out sessions); the two ranks start from an empty cache
    root = tmp_path / "lab"
    root.mkdir()
    names = ("session_03", "session_07")
    for name in names:
        (root / name).symlink_to(generated_set / "lab" / name, target_is_directory=True)
    (root / "splits.csv").write_text("session,split\nsession_03,train\nsession_07,val\n")

    def args(out, cache):
        return ["fusion", "--quiet", "--data", f"lab:{root}", "--set", f"out_dir={out}", "--set", f"cache_dir={cache}",
                "--set", "runtime_baselines=false", "--set", "chunk_s=4", "--set", "chunk_hop_s=1",
                "--set", "batch_size=4", "--set", "max_steps=3", "--set", "dropout=0.0"]
    one, two = tmp_path / "one", tmp_path / "two"
    one_cache, two_cache = trained["out"].parent / "cache", tmp_path / "cache_two"
    assert emo_train.main(args(one, one_cache)) == 0
    s1 = json.loads((one / "summary.json").read_text())
    assert s1["extraction"]["world_size"] == 1
    assert s1["extraction"]["ranks"][0]["dealt"] == []       # one process: no plan, it extracts as it reads
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "emo_perception.cli.train"] + args(two, two_cache)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    s2 = json.loads((two / "summary.json").read_text())
    ranks = s2["extraction"]["ranks"]
    assert s2["world_size"] == 2 and [r["rank"] for r in ranks] == [0, 1]
    # every session dealt to exactly one rank, both ranks busy, and each of its cache files computed once,
    # by that rank, before the barrier; after it nothing was computed again
    assert sorted(n for r in ranks for n in r["dealt"]) == sorted(names) and all(r["dealt"] for r in ranks)
    computed = collections.Counter(f for r in ranks for f in r["computed"])
    assert set(computed) == {f"{n}.{kind}" for n in names for kind in ("faces", "audio")}
    assert set(computed.values()) == {1}, computed
    for r in ranks:
        assert {f.split(".")[0] for f in r["computed"]} == set(r["dealt"])
        assert r["computed_after_barrier"] == []
    assert "warning" not in s2["extraction"]
    # the features equal the one-process run's, array for array (the key too: same code, models, media)
    files = sorted(p.name for p in two_cache.glob("*.npz"))
    assert len(files) == 4 and all((one_cache / name).is_file() for name in files)
    for name in files:
        with np.load(one_cache / name) as a, np.load(two_cache / name) as b:
            assert a.files == b.files
            for k in a.files:
                assert np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), (name, k)
    # and so does the trained model: the same global batches from the same features; only the float sums
    # are in another order (two half batches, gloo's all-reduce), which moves Adam's first steps where a
    # gradient is near its eps: 1.9e-5 and 4.5e-6 measured after 3 steps on two session sets, under a
    # fiftieth of one step's size (lr 1e-3)
    w1 = torch.load(one / "checkpoint.pt", weights_only=True)["state_dict"]
    w2 = torch.load(two / "checkpoint.pt", weights_only=True)["state_dict"]
    assert w1.keys() == w2.keys()
    diff = max(float((w1[k] - w2[k]).abs().max()) for k in w1)
    assert diff < 1e-4, diff
    assert s1["steps"] == s2["steps"] == 3
    la, lb = ([r["value"] for r in read_metrics(d) if r["name"] == "loss"] for d in (one, two))
    # (this is also the DDP test: the same global batch gives the same loss and, after the all-reduce, the
    # same weights; a rank that trained on its half alone would be off by far more than 1e-4)
    assert abs(la[0] - lb[0]) < 1e-5, (la, lb)
    for k, v in s1["val"].items():
        assert s2["val"][k] == pytest.approx(v, abs=1e-3), k
