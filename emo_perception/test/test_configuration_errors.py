"""Configuration errors name the fix: one line with the parameter (or file), the value and what is
allowed, exit 1, no traceback. The lines come from runtime/params.py, params_file.py and build.py,
and are checked here in-process, with the runner's own exit codes; two node processes check that a
node script and emo_perception_all, started as `ros2 run`/`ros2 launch` start them, print that one
line and exit 1."""
import importlib.util

import cv2
import pytest

from bad_input_cases import covers
from emo_perception.inference import ModelFileError
from emo_perception.nodes import audio_embedding_node
from emo_perception.nodes.runner import CONFIG_FAILED, run, split_args
from emo_perception.runtime.build import build_detector, build_face_pipeline, build_fusion_pipeline
from emo_perception.runtime.config import NODE_CONFIGS, FaceConfig
from emo_perception.runtime.params import ConfigError, from_values
from emo_perception.runtime.params_file import load_node_config
from node_harness import PARAMS, NodeProcess

YAML_TYPO = """/**/face_embedding_node:
  ros__parameters:
    procesing_rate: 10.0
"""
YAML_WRONG_NODE = """/**/face_embeding_node:
  ros__parameters:
    processing_rate: 10.0
/**/face_embedding_node:
  ros__parameters:
    processing_rate: 10
"""
YAML_BROKEN = "/**/fusion_node:\n  ros__parameters:\n    mode: [prior\n"
YAML_GRU = "/**/fusion_node:\n  ros__parameters:\n    mode: gru\n    fusion_model: /nonexistent/fusion.json\n"
TYPO = "parameter 'procesing_rate' is not a parameter of face_embedding_node; did you mean 'processing_rate'?"
WRONG_NODE = ("block '/**/face_embeding_node' matches none of face_embedding_node, audio_embedding_node, fusion_node, "
              "session_logger_node, live_view_node; its parameters are not used")

# node -> parameter values (as `-p NAME:=VALUE` or a YAML block gives them) -> the one line
FAILS = {
    "typo": ("face_embedding_node", {"procesing_rate": 10.0}, TYPO),
    "out_of_range": ("face_embedding_node", {"processing_rate": 500.0},
                     "parameter 'processing_rate' is 500.0; allowed: 0.1 to 120.0"),
    "wrong_type": ("face_embedding_node", {"max_faces": "many"},
                   "parameter 'max_faces' is 'many' (str); expected int, e.g. 8"),
    "hop_over_window": ("audio_embedding_node", {"hop": 1.0, "window": 0.5},
                        "parameter 'hop' is 1.0; allowed: <= window (0.5)"),
    "stamp_position": ("audio_embedding_node", {"stamp_position": "middle"},
                       "parameter 'stamp_position' is 'middle'; allowed: start, end"),
    "stamp_source": ("face_embedding_node", {"stamp_source": "gps"},
                     "parameter 'stamp_source' is 'gps'; allowed: header, arrival"),
    "arrival_at_start": ("audio_embedding_node", {"stamp_source": "arrival"},
                         "parameter 'stamp_position' is 'start' but stamp_source is 'arrival': a chunk arrives "
                         "after its last sample; allowed: end"),
    "reliability": ("audio_embedding_node", {"input_reliability": "sometimes"},
                    "parameter 'input_reliability' is 'sometimes'; allowed: best_effort, reliable"),
    "mode": ("fusion_node", {"mode": "magic"}, "parameter 'mode' is 'magic'; allowed: prior, gru"),
}


@pytest.mark.parametrize("case", sorted(FAILS))
def test_bad_values_give_one_line_naming_parameter_value_and_allowed(case):
    node, values, line = FAILS[case]
    with pytest.raises(ConfigError) as err:
        from_values(NODE_CONFIGS[node], values, node)
    assert str(err.value) == line


def test_integers_are_taken_for_floats_from_parameters_and_files(tmp_path):
    cfg = from_values(FaceConfig, {"track_max_age": 2}, "face_embedding_node")
    assert cfg.track_max_age == 2.0 and type(cfg.track_max_age) is float
    params = tmp_path / "params.yaml"
    params.write_text(YAML_WRONG_NODE)
    cfg = load_node_config(params, "face_embedding_node")
    assert cfg.processing_rate == 10.0 and type(cfg.processing_rate) is float


def test_a_misspelt_parameter_in_a_params_file_names_the_file(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text(YAML_TYPO)
    with pytest.raises(ConfigError) as err:
        load_node_config(typo, "face_embedding_node")
    assert str(err.value) == TYPO.replace("'procesing_rate'", f"'procesing_rate' (in {typo})")


@pytest.mark.parametrize("case", ["missing", "broken"])
def test_a_missing_or_malformed_params_file_is_one_line_on_stderr_and_exit_1_before_ros_starts(case, tmp_path,
                                                                                                 capsys):
    path = tmp_path / f"{case}.yaml"
    if case == "broken":
        path.write_text(YAML_BROKEN)
    line = {"missing": f"params file '{path}' does not exist",
            "broken": f"params file '{path}' is not valid YAML at line 4"}[case]
    from emo_perception.nodes.fusion_node import FusionNode

    assert run([FusionNode], ["fusion_node", "--ros-args", "--params-file", str(path)]) == CONFIG_FAILED
    out = capsys.readouterr()
    assert out.err.startswith(f"[ERROR] fusion_node: {line}") and out.err.count("\n") == 1 and not out.out


def test_params_file_outside_ros_args_is_passed_on_to_ros():
    ros_argv, files, help_asked = split_args(["emo_perception_all", "--params-file", "a.yaml", "--ros-args",
                                              "-p", "mode:=gru"])
    assert files == ["a.yaml"] and not help_asked
    ros = ros_argv[ros_argv.index("--ros-args") + 1:]
    assert ros_argv[0] == "emo_perception_all" and ros.count("--params-file") == 1
    assert ros[ros.index("--params-file") + 1] == "a.yaml" and ros[ros.index("-p") + 1] == "mode:=gru"


def test_a_missing_fusion_model_names_the_file(tmp_path):
    gru = tmp_path / "gru.yaml"
    gru.write_text(YAML_GRU)
    with pytest.raises(ModelFileError, match="/nonexistent/fusion.json"):
        build_fusion_pipeline(load_node_config(gru, "fusion_node"))


def test_an_exception_that_is_not_ours_is_raised_as_it_is():
    # OpenCV cannot read a YAML file as a YuNet model: the node logs "configure failed: error: OpenCV ..."
    with pytest.raises(cv2.error, match="OpenCV"):
        build_detector(FaceConfig(detector="yunet", detector_model=str(PARAMS)))


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_tensorrt_backend_without_tensorrt_says_what_to_install():
    with pytest.raises(ConfigError) as err:
        build_face_pipeline(FaceConfig(backend="tensorrt"))
    assert str(err.value) == ("parameter 'backend' is 'tensorrt', but tensorrt cannot be imported; install TensorRT's "
                              "Python bindings (JetPack ships them) and cuda-python (requirements/robot.txt) or set "
                              "backend: onnxruntime")


def test_help_lists_parameters_and_topics(capsys):
    assert audio_embedding_node.main(["audio_embedding_node", "--help"]) == 0
    out = capsys.readouterr().out
    assert "stamp_position (str, default 'start')" in out and "audio_stamped" in out


# ---------------------------------------------------------------------------------- node processes
def _error_lines(proc):
    log = proc.log()
    assert "Traceback" not in log, log[-2000:]
    return [ln for ln in log.splitlines() if "ERROR" in ln]


@pytest.mark.ros
@covers("bad_parameter")
def test_a_node_script_with_a_bad_parameter_exits_1_with_one_line(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(YAML_WRONG_NODE)
    # track_max_age:=2 (an int for a float) must pass, or its error would be the first line
    proc = NodeProcess("face_embedding_node", "-p", "track_max_age:=2", "-p", "procesing_rate:=10.0",
                       params_file=params)
    try:
        assert proc.wait_exit(60) == 1, proc.log()[-1500:]
    finally:
        proc.stop()
    errors = _error_lines(proc)
    assert len(errors) == 1 and errors[0].endswith(f"configure failed: {TYPO}"), proc.log()[-1500:]
    assert [ln for ln in proc.log().splitlines() if WRONG_NODE in ln], proc.log()[-1500:]


@pytest.mark.ros
def test_emo_perception_all_reads_a_params_file_given_before_ros_args(tmp_path):
    gru = tmp_path / "gru.yaml"
    gru.write_text(YAML_GRU)
    proc = NodeProcess("all_in_one", params_file=None, before_ros_args=["--params-file", str(gru)])
    try:
        assert proc.wait_exit(60) == 1, proc.log()[-1500:]
    finally:
        proc.stop()
    errors = _error_lines(proc)
    assert len(errors) == 1 and "configure failed: ModelFileError" in errors[0], proc.log()[-1500:]
    assert "/nonexistent/fusion.json" in errors[0]
