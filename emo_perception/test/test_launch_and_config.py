"""The launch file and YAML only reference executables, parameters and files that exist."""
import ast
import pathlib
import re

import pytest
import rclpy
import yaml

from emo_perception.nodes.audio_embedding_node import AudioEmbeddingNode
from emo_perception.nodes.face_embedding_node import FaceEmbeddingNode
from emo_perception.nodes.fusion_node import FusionNode

PKG = pathlib.Path(__file__).resolve().parents[1]
LAUNCH = PKG / "launch" / "emo_perception.launch.py"
CONFIG = PKG / "config" / "emo_perception.yaml"
NODES = {"face_embedding_node": FaceEmbeddingNode, "audio_embedding_node": AudioEmbeddingNode,
         "fusion_node": FusionNode}


def _console_scripts():
    setup = (PKG / "setup.py").read_text()
    return set(re.findall(r'"(\w+) = emo_perception\.', setup))


def _declared_parameters():
    ctx = rclpy.Context()
    rclpy.init(context=ctx, args=["--ros-args", "-p", "autostart:=false"])
    try:
        plain = rclpy.create_node("plain", context=ctx)
        builtin = set(plain._parameters)   # rclpy's own (use_sim_time, ...), not ours to configure
        plain.destroy_node()
        out = {}
        for name, cls in NODES.items():
            node = cls(context=ctx)
            out[name] = set(node._parameters) - builtin
            for p in out[name]:
                assert node.describe_parameter(p).description, f"{name}.{p} has no description"
            node.destroy_node()
        return out
    finally:
        rclpy.try_shutdown(context=ctx)


def test_launch_file_references_existing_executables_files_and_overrides():
    tree = ast.parse(LAUNCH.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    launched = {c.args[0].value for c in calls if getattr(c.func, "id", "") == "node"}
    assert launched == set(NODES) and launched <= _console_scripts()
    joined = [c for c in calls if getattr(c.func, "attr", "") == "join"]
    paths = [[a.value for a in c.args if isinstance(a, ast.Constant)] for c in joined]
    assert ["config", "emo_perception.yaml"] in paths and CONFIG.is_file()
    overrides = [n for n in ast.walk(tree) if isinstance(n, ast.Dict)]
    keys = {k.value for d in overrides for k in d.keys if isinstance(k, ast.Constant)}
    declared = _declared_parameters()
    for key in keys:
        assert all(key in params or key == "use_sim_time" for params in declared.values()), key


def test_yaml_sets_exactly_the_declared_parameters_of_each_node():
    config = yaml.safe_load(CONFIG.read_text())
    declared = _declared_parameters()
    assert set(config) == set(NODES)
    for name in NODES:
        assert set(config[name]["ros__parameters"]) == declared[name], name


def test_every_yaml_parameter_has_a_comment():
    for line in CONFIG.read_text().splitlines():
        if re.match(r"^\s{4}\w+:\s*\S", line):
            assert re.search(r"#\s*\S", line), f"no comment: {line}"


def test_launch_description_builds_where_launch_ros_exists():
    pytest.importorskip("launch_ros", reason="launch_ros is not installable here (robots have it)")
    import importlib.util
    spec = importlib.util.spec_from_file_location("emo_launch", LAUNCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ld = mod.generate_launch_description()
    assert len([e for e in ld.entities if type(e).__name__ == "Node"]) == 3


def test_yaml_parses_as_ros_parameters_in_a_real_node():
    """rcl's own YAML parser (stricter than PyYAML) accepts the file."""
    ctx = rclpy.Context()
    rclpy.init(context=ctx, args=["--ros-args", "--params-file", str(CONFIG), "-p", "autostart:=false"])
    try:
        node = FusionNode(context=ctx)
        assert node.get_parameter("fusion_model").value == "fusion_gru.json"
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
