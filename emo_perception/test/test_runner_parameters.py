"""The one-process runner honours -p: every `-p NAME:=VALUE` and `-p NODE:NAME:=VALUE` reaches the nodes
that declare it, over the package's default params file and over files named outside --ros-args, with
the single-node scripts' validation and one-line errors."""
import pytest

from emo_perception.nodes.runner import Runner, split_args
from node_harness import NodeProcess


def test_params_files_come_before_every_p_so_that_p_wins():
    ros, files, _ = split_args(["emo_perception_all", "--params-file", "a.yaml", "--ros-args", "-p", "mode:=gru"])
    assert ros == ["emo_perception_all", "--ros-args", "--params-file", "a.yaml", "-p", "mode:=gru"]
    assert files == ["a.yaml"]
    runner = Runner([], ["emo_perception_all", "--ros-args", "-p", "mode:=gru"], default_params=True)
    at = runner.ros_argv.index("--params-file")
    assert runner.ros_argv.index("mode:=gru") > at and runner.ros_argv[at + 1] == runner.files[0]


@pytest.mark.ros
@pytest.mark.parametrize("args, line", [
    (["-p", "processing_rate:=500"], "parameter 'processing_rate' is 500.0; allowed: 0.1 to 120.0"),
    (["-p", "face_embedding_node:processing_rate:=500"], "parameter 'processing_rate' is 500.0; allowed: 0.1 to 120.0"),
    # mode gru reaches the fusion node: it looks for the model it names
    (["-p", "mode:=gru", "-p", "fusion_model:=/nonexistent/fusion.json"], "/nonexistent/fusion.json"),
], ids=["global", "node_prefixed", "mode"])
def test_emo_perception_all_applies_p_over_its_default_params_file(args, line):
    proc = NodeProcess("all_in_one", *args, params_file=None)
    try:
        code = proc.wait_exit(timeout=60)
        log = proc.log()
    finally:
        proc.stop()
    assert code == 1, log[-2000:]
    assert line in log, log[-2000:]
