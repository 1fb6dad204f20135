"""The README's main command: a sample recording from real media, played live through the three nodes,
a report, a summary a researcher can read."""
import json
import os
import pathlib
import subprocess
import sys

from media import speech_16k


def test_emo_demo_runs_a_sample_recording_live_and_writes_a_report(tmp_path):
    speech_16k(1.0)   # skips cleanly where the speech package is missing
    out = subprocess.run([sys.executable, "-m", "emo_perception.cli.demo", "--out", str(tmp_path / "demo")],
                         capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["mode"] == "prior" and summary["affect_messages"] > 150
    assert summary["affect_messages"] >= summary["offline_steps"] - 10       # nothing lost live
    faces = {k: v for k, v in summary["people"].items() if k != "voice only"}
    assert len(faces) == 2, summary["people"]                               # two people, in turn
    first = min(faces)                                                      # f0: the smiling astronaut
    assert faces[first]["mean_valence"] > 0.1
    assert summary["latency_ms"]["p95"] < 1000
    assert pathlib.Path(summary["report"]).is_file() and "report:" in out.stdout
