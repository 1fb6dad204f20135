"""The README's main command: a sample recording from real media, played live through the three nodes,
a report, a summary a researcher can read."""
import csv
import json
import os
import pathlib
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from emo_perception.recordings.sample_media import demo_smile

from media import speech_16k

pytestmark = pytest.mark.ros


def test_emo_demo_runs_a_sample_recording_live_and_writes_a_report(tmp_path):
    speech_16k(1.0)   # skips cleanly where the speech package is missing
    out = subprocess.run([sys.executable, "-m", "emo_perception.cli.demo", "--out", str(tmp_path / "demo")],
                         capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["mode"] == "prior" and summary["affect_messages"] > 150
    assert summary["affect_messages"] >= summary["offline_steps"] - 10       # nothing lost live
    faces = {k: v for k, v in summary["people"].items() if k != "voice"}
    assert len(faces) == 2, summary["people"]                               # two people, in turn
    first = min(faces)                                                      # f0: the speaking astronaut
    assert faces[first]["mean_valence"] > 0.1
    # the estimate follows her face (issue 24 item 5): valence with her smile schedule, not a flat line
    with open(pathlib.Path(summary["report"]).parent / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    hers = [(float(r["time"]), float(r["valence"])) for r in rows if r["track_id"] == first]
    t, valence = np.array(hers).T
    assert valence.max() - valence.min() > 0.15, (valence.min(), valence.max())
    assert np.corrcoef(demo_smile(t), valence)[0, 1] > 0.5
    lat = summary["latency_ms"]     # steady state and the first estimate apart (issue 21 item 5)
    # bounds a stuck pipeline would break, not speed claims (bench/ measures latency): under the suite's two
    # workers one clean clone saw a p95 of 1.09 s
    assert lat["steady_state"]["p50"] < 1000 and lat["steady_state"]["p95"] < 3000
    assert lat["steady_state"]["n"] > 100 and lat["steady_after_s"] == 1.0
    assert 0 < lat["first_estimate_ms"] < 5000 and lat["first_second"]["n"] > 0
    assert f"steady-state image-to-affect latency (after the first 1 s) p50 {lat['steady_state']['p50']:.1f} ms" \
        in out.stdout and f"first estimate with a face {lat['first_estimate_ms']:.1f} ms" in out.stdout
    assert pathlib.Path(summary["report"]).is_file() and "report:" in out.stdout
    # the report: titled by its input, per person, the console summary in the page, fields defined
    page = pathlib.Path(summary["report"]).read_text()
    text = re.sub(r"data:image/png;base64,[^\"]*", "", page)     # the text, not the plots' base64 ("gold" by chance)
    assert "<h1>emo_demo: live run of the sample recording</h1>" in page and "gold" not in text.lower()
    assert "no annotations were given, so nothing is scored" in page
    assert all(f"<tr><th>{person}</th>" in page for person in summary["people"])
    assert f"p50 {lat['steady_state']['p50']:.1f} ms" in page and "the first second (start-up)" in page
    assert "0.25 &times; the voice probability" in page                    # what confidence is in prior mode


def test_emo_demo_with_a_bad_value_says_so_in_one_line_within_seconds(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("face_embedding_node:\n  ros__parameters:\n    processing_rate: 500.0\n")
    began = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "emo_perception.cli.demo", "--out", str(tmp_path / "demo"),
                          "--params-file", str(bad)], capture_output=True, text=True, timeout=60, env=dict(os.environ))
    took = time.monotonic() - began
    assert out.returncode == 1 and took < 15, (took, out.stderr)
    assert out.stderr.strip().splitlines() == [f"emo_demo: parameter 'processing_rate' in {bad} is 500.0; "
                                               "allowed: 0.1 to 120.0"], out.stderr
    assert not (tmp_path / "demo" / "bag").exists()         # nothing made for a run that cannot happen
