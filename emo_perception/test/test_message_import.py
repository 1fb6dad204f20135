"""Interface packages import from the venv with no extra environment (tier 1)."""
import os
import subprocess
import sys


def test_msgs_import_without_extra_env_vars():
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    code = "from emo_perception_msgs.msg import AffectArray; print(AffectArray.MODE_GRU)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "gru"
