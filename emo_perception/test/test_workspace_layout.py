"""The repository is a colcon workspace with the right packages (tier 1)."""
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("colcon") is None, reason="colcon not installed")
def test_colcon_lists_product_packages_but_not_the_test_only_audio_msgs():
    out = subprocess.run(["colcon", "list", "--names-only"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.split()
    assert "emo_perception" in out and "emo_perception_msgs" in out
    assert "audio_common_msgs" not in out
