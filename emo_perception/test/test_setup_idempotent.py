"""A second run of the one-command setup changes nothing."""
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_setup_second_run_is_a_no_op():
    venv = ROOT / ".venv"
    before = sorted(p.name for p in (venv / "lib").glob("python3*/site-packages/*"))
    out = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    # make test ran setup just before; if the inputs changed since, this run does the work once
    again = subprocess.run(["bash", str(ROOT / "scripts" / "setup.sh")], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "environment up to date" in again.stdout
    assert sorted(p.name for p in (venv / "lib").glob("python3*/site-packages/*")) == before
