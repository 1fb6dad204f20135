"""The README's main command runs the whole pipeline offline and reports affect for one person."""
import json
import os
import subprocess
import sys

from media import speech_16k


def test_emo_demo_runs_the_pipeline_on_embedded_defaults():
    speech_16k(1.0)   # skips cleanly where the speech package is missing
    out = subprocess.run([sys.executable, "-m", "emo_perception.tools.demo", "--seconds", "5"],
                         capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["mode"] == "prior" and summary["affect_messages"] > 50
    assert summary["tracks"] == ["f0"] and summary["mean_valence"] > 0.1
    assert summary["steps_with_voice"] > 0
