"""emo_eval on the issue's recording: one real face seen for 5 s, another after (scikit-image's
astronaut, then an LFW face), with annotations that change when the second person appears. What was
compared is written in metrics.json, predictions.csv and the report; the report reads per person
(in headless Chromium). test_eval_rules.py checks the rules without media."""
import base64
import csv
import html
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from emo_perception.cli import evaluate as emo_eval
from emo_perception.eval.evaluate import evaluate, run_offline
from emo_perception.eval.from_media import media_to_bag
from emo_perception.eval.report import write_report
from emo_perception.recordings.annotations import read_annotations
from emo_perception.recordings.media import write_clip
from emo_perception.runtime import load_configs
from media import demo_frame, second_person_frame

pytestmark = pytest.mark.media

FPS, SECONDS, SWITCH = 10.0, 8.0, 5.0
TAB10 = {"f0": (31, 119, 180), "f1": (255, 127, 14)}     # the report's colours of the first two people


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    d = tmp_path_factory.mktemp("who")
    first, second = demo_frame(), second_person_frame()
    frames = [np.roll(first if k < SWITCH * FPS else second, 3 * (k % 4), axis=1) for k in range(int(SECONDS * FPS))]
    write_clip(d / "clip.mp4", frames, FPS)
    media_to_bag(d / "clip.mp4", d / "bag")
    t = np.arange(0, SECONDS, 0.04)
    with open(d / "gold.csv", "w", newline="") as f:      # +0.5 while the first person is seen, -0.5 after
        w = csv.writer(f)
        w.writerow(["time", "valence", "arousal"])
        w.writerows([f"{ti:.2f}", 0.5 if ti < SWITCH else -0.5, f"{0.2 * np.sin(ti):.3f}"] for ti in t)
    return d


@pytest.fixture(scope="module")
def offline(recording):
    return run_offline(recording / "bag", load_configs(None))


def _figures(page: str) -> dict:
    return {html.unescape(alt): base64.b64decode(data) for alt, data in
            re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]*)"', page)}


def _pixels_of(png: bytes, rgb, tol=12) -> int:
    from PIL import Image
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int((np.abs(img - np.array(rgb)).max(axis=-1) <= tol).sum())


def test_an_unnamed_annotation_is_scored_against_one_named_track_over_named_spans(recording, tmp_path, capsys):
    report = tmp_path / "report"
    assert emo_eval.main([str(recording / "bag"), "--annotations", str(recording / "gold.csv"),
                          "--report", str(report), "--quiet"]) == 0
    err = capsys.readouterr().err
    metrics = json.loads((report / "metrics.json").read_text())
    e = metrics["sessions"][str(recording / "bag")]
    assert sorted(e["tracks"]) == ["f0", "f1"]
    (used,) = e["metrics"]["compared"]
    # the face seen longest: the first person, over the 5 s it was seen (the old rule mixed both
    # people into one series and scored this annotation valence CCC 0.97)
    assert used["track"] == "f0" and used["person"] == "(unnamed)"
    (span,) = used["spans_s"]
    assert span[0] == 0.0 and abs(span[1] - SWITCH) <= 0.2, span
    assert e["metrics"]["valence"]["ccc"] < 0.5
    assert "emo_eval: warning:" in err and "more than one person was in view" in err and "not compared: f1" in err
    assert any("more than one person was in view" in w for w in metrics["warnings"])
    with open(report / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    scored = [r for r in rows if r["compared_with"]]
    assert {r["track_id"] for r in scored} == {"f0"} and max(float(r["time"]) for r in scored) < SWITCH + 0.2
    assert len(scored) == e["metrics"]["valence"]["n"]
    # the report shows the compared series and every person, and defines its fields
    page = (report / "report.html").read_text()
    for text in ("<h2>Session bag</h2>", "<h3>People</h3>", "mean valence", "What the fields mean",
                 "0.5 for an estimate from a face alone", "the face track seen in most steps",
                 "more than one person was in view"):
        assert text in page, text
    assert "prediction and gold" not in page.lower() and "{&quot;" not in page and '{"' not in page   # no raw dicts
    figures = _figures(page)
    compared = [c for c in figures if c.startswith("What the scores of (unnamed) compared")]
    assert len(compared) == 1 and "track f0" in compared[0]
    (circumplex,) = [png for c, png in figures.items() if "circumplex" in c]
    assert all(_pixels_of(circumplex, rgb) > 20 for rgb in TAB10.values())    # both people, in their colours
    (presence,) = [png for c, png in figures.items() if c.startswith("When each person was seen")]
    assert _pixels_of(presence, (44, 160, 44)) > 200                           # tab:green face bands


def test_person_option_and_named_people_pick_the_other_track(recording, offline):
    gold = read_annotations(recording / "gold.csv")
    e = evaluate([offline], lambda _: gold, ["f1"])["sessions"][str(recording / "bag")]
    (used,) = e["metrics"]["compared"]
    assert used["track"] == "f1" and used["spans_s"][0][0] >= SWITCH - 0.2
    assert e["metrics"]["valence"]["ccc"] < 0.5     # f1 alone against an annotation that is flat for it
    by_name = recording / "people.csv"
    with open(by_name, "w", newline="") as f:       # people named, not by track id: left to right (f0 is left)
        w = csv.writer(f)
        w.writerow(["time", "valence", "arousal", "person"])
        for ti in np.arange(0, SECONDS, 0.04):
            w.writerow([f"{ti:.2f}", 0.4 if ti < SWITCH else 0.0, 0.2, "alice" if ti < SWITCH else "bob"])
    e = evaluate([offline], lambda _: read_annotations(by_name))["sessions"][str(recording / "bag")]
    assert {c["person"]: c["track"] for c in e["metrics"]["compared"]} == {"alice": "f0", "bob": "f1"}


def test_nothing_scorable_exits_non_zero_naming_why(recording, tmp_path, capsys):
    one = tmp_path / "one.csv"
    one.write_text("Time;Valence;Arousal\n2,00;0,3;0,1\n")     # one step; semicolons and decimal commas
    code = emo_eval.main([str(recording / "bag"), "--annotations", str(one), "--report", str(tmp_path / "r"),
                          "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "nothing could be scored" in err
    assert "valence: not scored: 1 step where the prediction and the annotation both have a value" in err
    ms = tmp_path / "ms.csv"
    ms.write_text("time,valence,arousal\n" + "".join(f"{k * 40},0.1,0.1\n" for k in range(200)))
    assert emo_eval.main([str(recording / "bag"), "--annotations", str(ms), "--report", str(tmp_path / "r2"),
                          "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "they look like milliseconds" in err and str(ms) in err


def test_report_without_annotations_says_so_and_renders_in_chromium(recording, offline, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    metrics = evaluate([offline], lambda _: None)
    page_path = write_report(tmp_path / "r", [offline], metrics, lambda _: None, title="emo_demo: live run of clip.mp4",
                             run={"input": "clip.mp4"})
    page = page_path.read_text()
    assert "no annotations were given, so nothing is scored" in page and "none: nothing is scored" in page
    assert "gold" not in page.lower() and "annotation: " not in page and "Scores" not in page
    assert "emo_demo: live run of clip.mp4" in page and "<th>input</th><td>clip.mp4</td>" in page
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it as root)")
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--no-first-run", f"--screenshot={shot}", "--window-size=1000,2400", page_path.as_uri()],
                   capture_output=True, timeout=120, check=True)
    png = shot.read_bytes()
    assert all(_pixels_of(png, rgb) > 50 for rgb in TAB10.values())
