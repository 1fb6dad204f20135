"""A study in parts (issue 23 item 4): emo_eval --shard I/N over a few short bags made from real media,
merged with emo_eval merge, equals one run over all of them (metrics.json, predictions.csv and the
exact compared steps); --jobs 2 equals --jobs 1, with one progress line per finished bag; bad values of
--shard and --jobs, --live with --jobs > 1, and shares that cannot be merged are one line each."""
import csv
import json
import shutil

import numpy as np
import pytest

from emo_perception.cli import evaluate as emo_eval
from emo_perception.eval.from_media import media_to_bag
from emo_perception.eval.shards import ShardError, Shard, parse_shard, share
from emo_perception.recordings.annotations import read_annotations
from emo_perception.recordings.media import Audio, write_clip
from media import demo_frame, second_person_frame, speech_16k

SECONDS, FPS = 2.0, 10.0
ANNOTATED = ("b0", "b1")       # b2 has no annotations: in the report, not in any score


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Three 2 s bags: two real faces in turn (a different turn-taking each), real speech; gold
    valence/arousal at 25 Hz in two of them. Given out of sorted order, as a user's list may be."""
    d = tmp_path_factory.mktemp("study")
    first, second = demo_frame(), second_person_frame()
    speech = (speech_16k(SECONDS) * 32767).astype(np.int16)[:, None]
    bags = []
    for i, name in enumerate(("b0", "b1", "b2")):
        frames = [np.roll(first if (k + 5 * i) % 16 < 10 else second, 3 * (k % 4), axis=1)
                  for k in range(int(SECONDS * FPS))]
        write_clip(d / f"{name}.mp4", frames, FPS, Audio(speech, 16000))
        annotations = None
        if name in ANNOTATED:
            t = np.arange(0, SECONDS, 0.04)
            with open(d / f"{name}.csv", "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["time", "valence", "arousal"])
                w.writerows([f"{ti:.2f}", f"{0.6 * np.sin(2 * ti + i):.3f}", f"{0.3 * np.cos(3 * ti - i):.3f}"]
                            for ti in t)
            annotations = read_annotations(str(d / f"{name}.csv"))
        media_to_bag(d / f"{name}.mp4", d / name, annotations=annotations)
        bags.append(str(d / name))
    return [bags[2], bags[0], bags[1]]


@pytest.fixture(scope="module")
def single(study, tmp_path_factory):
    """One run over the whole study, one process: the reference."""
    out = tmp_path_factory.mktemp("single") / "report"
    assert emo_eval.main([*study, "--report", str(out), "--quiet"]) == 0
    return out


def _metrics(folder):
    return json.loads((folder / "metrics.json").read_text())


@pytest.mark.media
def test_two_shards_merged_equal_one_run_over_the_whole_study(study, single, tmp_path, capsys):
    out = tmp_path / "study"
    for i in (0, 1):     # two tasks of a job array: the same command line but the share
        assert emo_eval.main([*study, "--shard", f"{i}/2", "--report", str(out), "--quiet"]) == 0
    capsys.readouterr()
    shares = [_metrics(out / f"shard_{i}_of_2") for i in (0, 1)]
    # the split: the paths sorted, dealt round-robin (b0, b2 | b1), each bag in exactly one share
    names = [sorted(p.rsplit("/", 1)[1] for p in m["sessions"]) for m in shares]
    assert names == [["b0", "b2"], ["b1"]]
    assert emo_eval.main(["merge", str(out / "shard_0_of_2"), str(out / "shard_1_of_2"),
                          "--report", str(tmp_path / "all")]) == 0
    printed = json.loads(capsys.readouterr().out)
    merged, reference = _metrics(tmp_path / "all"), _metrics(single)
    made = merged.pop("merged_from")
    assert [m["shard"] for m in made] == ["0/2", "1/2"] and all("--shard" in m["command"] for m in made)
    # pooled CCC/PCC/RMSE (and every session entry, warning and what was compared) equal the single run's
    assert merged == reference
    assert merged["pooled"]["valence"]["n"] == sum(merged["sessions"][b]["metrics"]["valence"]["n"]
                                                   for b in study if "metrics" in merged["sessions"][b])
    with open(tmp_path / "all" / "predictions.csv") as f:   # sessions in the order given, as the single run
        assert list(dict.fromkeys(r["session"] for r in csv.DictReader(f))) == study
    assert printed["pooled"] == reference["pooled"] and set(printed["sessions"]) == set(study)
    # pooling is not an average of the shares' pooled scores: each share's differs from the whole's
    for m in shares:
        assert m["pooled"]["valence"]["ccc"] != reference["pooled"]["valence"]["ccc"]
    for name in ("predictions.csv", "compared.csv"):
        assert (tmp_path / "all" / name).read_text() == (single / name).read_text(), name
    page = (tmp_path / "all" / "report.html").read_text()
    assert "Pooled over sessions" in page and "../study/shard_0_of_2/report.html" in page
    for b in study:
        assert f"<h2>Session {b.rsplit('/', 1)[1]}</h2>" in page

    # shares that do not make one run: one line naming what is wrong, nothing written
    def refused(*folders):
        assert emo_eval.main(["merge", *map(str, folders), "--report", str(tmp_path / "bad")]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and not (tmp_path / "bad").exists()
        return err
    assert "share 1/2 missing (have 0/2)" in refused(out / "shard_0_of_2")
    assert "share 0/2 given twice" in refused(out / "shard_0_of_2", out / "shard_0_of_2", out / "shard_1_of_2")
    assert "not a shard's report (made without --shard)" in refused(single, out / "shard_1_of_2")
    other = tmp_path / "other_settings"
    shutil.copytree(out / "shard_1_of_2", other)
    m = _metrics(other)
    m["shard"]["settings"]["params sha256"] = "0" * 64
    (other / "metrics.json").write_text(json.dumps(m))
    assert "the settings differ: params sha256" in refused(out / "shard_0_of_2", other)
    # the folder that holds the shares works as well as naming them
    assert emo_eval.main(["merge", str(out), "--report", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "compared.csv").read_text() == (single / "compared.csv").read_text()


@pytest.mark.media
def test_jobs_2_equals_jobs_1_with_a_line_per_finished_bag(study, single, tmp_path, capsys):
    out = tmp_path / "jobs2"
    assert emo_eval.main([*study, "--jobs", "2", "--report", str(out)]) == 0
    err = capsys.readouterr().err
    assert _metrics(out) == _metrics(single)
    for name in ("predictions.csv", "compared.csv"):
        assert (out / name).read_text() == (single / name).read_text(), name
    lines = [ln for ln in err.splitlines() if ln.startswith("emo_eval: [")]
    assert [ln.split("]")[0] for ln in lines] == [f"emo_eval: [{k}" for k in ("1/3", "2/3", "3/3")]
    assert sorted(ln.split(": ")[1].split(" ")[1] for ln in lines) == sorted(study)
    assert all(" steps in " in ln and "(worker " in ln for ln in lines)
    assert "emo_eval: 3 bags on 2 worker processes" in err


@pytest.mark.parametrize("args, line", [
    (["--shard", "3/2"], "emo_eval: --shard 3/2: allowed: I/N with N >= 1 and 0 <= I < N"),
    (["--shard=-1/2"], "emo_eval: --shard -1/2: allowed: I/N"),
    (["--shard", "two"], "emo_eval: --shard two: allowed: I/N"),
    (["--jobs", "0"], "emo_eval: --jobs 0: allowed: an integer >= 1"),
    (["--jobs", "many"], "emo_eval: --jobs many: allowed: an integer >= 1"),
    (["--live", "--jobs", "2"], "emo_eval: --jobs 2 with --live: a live run plays one bag at a time"),
])
def test_bad_shard_and_jobs_values_are_one_line_naming_the_option(args, line, tmp_path, capsys):
    assert emo_eval.main([str(tmp_path / "a"), str(tmp_path / "b"), *args, "--report", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(line) and err.count("\n") == 1, err
    assert not (tmp_path / "r").exists()


def test_the_split_is_round_robin_over_sorted_paths_and_env_reads_torchrun_or_srun():
    bags = ["s/c", "s/a", "s/e", "s/b", "s/d"]
    parts = [share(bags, Shard(i, 3)) for i in range(3)]
    assert parts == [["s/a", "s/d"], ["s/e", "s/b"], ["s/c"]]             # in the order given
    assert sorted(sum(parts, [])) == sorted(bags) and share(bags, None) == bags
    assert parse_shard("env", {"RANK": "2", "WORLD_SIZE": "4"}) == Shard(2, 4)
    assert parse_shard("env", {"SLURM_PROCID": "0", "SLURM_NTASKS": "3"}) == Shard(0, 3)
    with pytest.raises(ShardError, match="--shard env: neither RANK/WORLD_SIZE"):
        parse_shard("env", {})
    with pytest.raises(ShardError, match="--shard 4/4"):
        parse_shard("env", {"RANK": "4", "WORLD_SIZE": "4"})


def test_an_empty_share_writes_an_empty_shard_report(tmp_path, capsys):
    """More tasks than bags: the extra shares are empty, not an error, so a job array never has to
    count the bags; their reports merge like any other."""
    assert emo_eval.main([str(tmp_path / "only"), "--shard", "1/2", "--report", str(tmp_path / "r")]) == 0
    m = _metrics(tmp_path / "r" / "shard_1_of_2")
    assert m["sessions"] == {} and m["shard"]["share"] == [] and m["shard"]["bags"] == [str(tmp_path / "only")]
    assert "share 1/2: 0 of 1 bag -> " in capsys.readouterr().err
