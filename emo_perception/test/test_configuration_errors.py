"""Configuration errors name the fix: one line with the parameter (or file), the value and what is
allowed, exit 1, no traceback. Every node runs as its own process, as `ros2 run`/`ros2 launch` start it."""
import importlib.util
import time

import pytest

from bad_input_cases import covers
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

# (node, extra arguments, expected one-line message); the node must exit 1
FAILS = {
    "typo_cli": ("face_embedding_node", ["-p", "procesing_rate:=10.0"],
                 "parameter 'procesing_rate' is not a parameter of face_embedding_node; did you mean 'processing_rate'?"),
    "out_of_range": ("face_embedding_node", ["-p", "processing_rate:=500.0"],
                     "parameter 'processing_rate' is 500.0; allowed: 0.1 to 120.0"),
    "wrong_type": ("face_embedding_node", ["-p", "max_faces:=many"],
                   "parameter 'max_faces' is 'many' (str); expected int, e.g. 8"),
    "hop_over_window": ("audio_embedding_node", ["-p", "hop:=1.0", "-p", "window:=0.5"],
                        "parameter 'hop' is 1.0; allowed: <= window (0.5)"),
    "stamp_position": ("audio_embedding_node", ["-p", "stamp_position:=middle"],
                       "parameter 'stamp_position' is 'middle'; allowed: start, end"),
    "reliability": ("audio_embedding_node", ["-p", "input_reliability:=sometimes"],
                    "parameter 'input_reliability' is 'sometimes'; allowed: best_effort, reliable"),
    "mode": ("fusion_node", ["-p", "mode:=magic"], "parameter 'mode' is 'magic'; allowed: prior, gru"),
    # not one of ours: OpenCV cannot read the file; the message is logged, not swallowed
    "configure_exception": ("face_embedding_node", ["-p", "detector:=yunet", "-p", f"detector_model:={PARAMS}"],
                            "configure failed: error: OpenCV"),
}


def _run(name, args, params_file=PARAMS, *extra):
    return NodeProcess(name, *args, params_file=params_file) if params_file else NodeProcess(name, *args)


def _one_line(log, text):
    lines = [ln for ln in log.splitlines() if text in ln]
    assert lines, f"no line with {text!r} in:\n{log[-2000:]}"
    assert "Traceback" not in log, log[-2000:]


@covers("bad_parameter")
def test_bad_values_fail_configuration_with_one_line_naming_parameter_value_and_allowed(tmp_path):
    typo_yaml = tmp_path / "typo.yaml"
    typo_yaml.write_text(YAML_TYPO)
    broken = tmp_path / "broken.yaml"
    broken.write_text(YAML_BROKEN)
    gru = tmp_path / "gru.yaml"
    gru.write_text(YAML_GRU)
    procs = {k: _run(n, a) for k, (n, a, _) in FAILS.items()}
    procs["typo_yaml"] = NodeProcess("face_embedding_node", params_file=typo_yaml)
    procs["missing_file"] = NodeProcess("fusion_node", params_file=tmp_path / "nonexistent.yaml")
    procs["broken_file"] = NodeProcess("fusion_node", params_file=broken)
    # emo_perception_all takes --params-file outside --ros-args too: the file's values are used
    procs["all_params_file"] = NodeProcess("all_in_one", params_file=None, before_ros_args=["--params-file", str(gru)])
    expected = {k: msg for k, (_, _, msg) in FAILS.items()}
    expected.update({
        "typo_yaml": "parameter 'procesing_rate' is not a parameter of face_embedding_node; did you mean 'processing_rate'?",
        "missing_file": f"params file '{tmp_path / 'nonexistent.yaml'}' does not exist",
        "broken_file": f"params file '{broken}' is not valid YAML at line 4",
        "all_params_file": "/nonexistent/fusion.json",
    })
    try:
        codes = {k: p.wait_exit(60) for k, p in procs.items()}
    finally:
        for p in procs.values():
            p.stop()
    for key, proc in procs.items():
        assert codes[key] == 1, f"{key}: exit {codes[key]}\n{proc.log()[-1500:]}"
        _one_line(proc.log(), expected[key])


def test_integers_for_floats_run_and_unknown_yaml_node_keys_warn(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(YAML_WRONG_NODE)
    proc = NodeProcess("face_embedding_node", "-p", "track_max_age:=2", params_file=params)
    try:
        deadline = time.monotonic() + 60
        while "face model" not in proc.log() and proc.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.alive(), proc.log()
    finally:
        proc.stop()
    _one_line(proc.log(), "block '/**/face_embeding_node' matches none of face_embedding_node, audio_embedding_node, "
                          "fusion_node, session_logger_node, live_view_node; its parameters are not used")
    assert "configure failed" not in proc.log()


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_tensorrt_backend_without_tensorrt_says_what_to_install():
    proc = NodeProcess("face_embedding_node", "-p", "backend:=tensorrt")
    try:
        assert proc.wait_exit(60) == 1
    finally:
        proc.stop()
    _one_line(proc.log(), "parameter 'backend' is 'tensorrt', but tensorrt cannot be imported; install TensorRT's "
                          "Python bindings (JetPack ships them) and cuda-python (requirements/robot.txt) or set "
                          "backend: onnxruntime")


def test_help_lists_parameters_and_topics():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "emo_perception.nodes.audio_embedding_node", "--help"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert "stamp_position (str, default 'start')" in out.stdout and "audio_stamped" in out.stdout
