"""Start helper scripts as separate processes that share the test's ROS domain."""
import json
import os
import pathlib
import subprocess
import sys

HELPERS = pathlib.Path(__file__).resolve().parent / "helpers"


def start(script: str, *args: str) -> subprocess.Popen:
    """Run test/helpers/<script> in a new Python process with the test's environment."""
    return subprocess.Popen(
        [sys.executable, str(HELPERS / script), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def finish(proc: subprocess.Popen, timeout: float) -> dict:
    """Wait for a helper and return the JSON object it printed last on stdout."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"helper timed out after {timeout}s; stderr:\n{err[-3000:]}")
    assert proc.returncode == 0, f"helper exited {proc.returncode}; stderr:\n{err[-3000:]}"
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    assert lines, f"helper printed no JSON; stdout:\n{out[-2000:]}\nstderr:\n{err[-2000:]}"
    return json.loads(lines[-1])
