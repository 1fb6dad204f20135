"""The launch file, the shipped YAML, the runtime config dataclasses and the declared parameters
are one thing: same names, same defaults, everything described."""
import ast
import dataclasses
import pathlib
import re

import pytest
import rclpy
import yaml

from emo_perception.nodes.all_in_one import NODES
from emo_perception.nodes.live_view_node import LiveViewNode
from emo_perception.nodes.session_logger_node import SessionLoggerNode
from emo_perception.runtime import NODE_CONFIGS, load_configs
from emo_perception.runtime.config import defaults
from emo_perception.runtime.params_file import node_values

PKG = pathlib.Path(__file__).resolve().parents[1]
LAUNCH = PKG / "launch" / "emo_perception.launch.py"
CONFIG = PKG / "config" / "emo_perception.yaml"
CLASSES = {**dict(zip(NODE_CONFIGS, NODES)), "session_logger_node": SessionLoggerNode,
           "live_view_node": LiveViewNode}   # node name -> class
PERCEPTION = ("face_embedding_node", "audio_embedding_node", "fusion_node")   # what the launch file starts


def _console_scripts():
    setup = (PKG / "setup.py").read_text()
    return set(re.findall(r'"(\w+) = emo_perception\.', setup))


def _declared_parameters():
    """name -> {parameter: (value, description)} from the real nodes, rclpy's own parameters left out."""
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        plain = rclpy.create_node("plain", context=ctx)
        builtin = set(plain._parameters)
        plain.destroy_node()
        out = {}
        for name, cls in CLASSES.items():
            node = cls(context=ctx)
            out[name] = {p: (node.get_parameter(p).value, node.describe_parameter(p).description)
                         for p in set(node._parameters) - builtin}
            node.destroy_node()
        return out
    finally:
        rclpy.try_shutdown(context=ctx)


@pytest.mark.ros
def test_nodes_declare_exactly_the_runtime_config_fields_with_their_defaults_and_descriptions():
    declared = _declared_parameters()
    for name, cls in NODE_CONFIGS.items():
        assert {p: v for p, (v, _) in declared[name].items()} == defaults(cls), name
        assert all(desc for _, desc in declared[name].values()), f"{name}: a parameter without description"


def test_shipped_yaml_equals_the_runtime_defaults_for_every_node():
    data = yaml.safe_load(CONFIG.read_text())
    assert set(data) == {f"/**/{n}" for n in NODE_CONFIGS}
    for name, cls in NODE_CONFIGS.items():
        assert node_values(data, name) == defaults(cls), name
    assert {n: dataclasses.asdict(c) for n, c in load_configs(CONFIG).items()} == \
           {n: defaults(c) for n, c in NODE_CONFIGS.items()}


def test_the_landmarks_profile_changes_only_the_face_nodes_landmarker_and_prior():
    profile = load_configs(PKG / "config" / "face_landmarks.yaml")
    face = dataclasses.asdict(profile["face_embedding_node"])
    assert face.pop("face_landmarks") is True and face.pop("face_prior") == "blendshapes"
    expected = defaults(NODE_CONFIGS["face_embedding_node"])
    del expected["face_landmarks"], expected["face_prior"]
    assert face == expected
    assert all(dataclasses.asdict(c) == defaults(NODE_CONFIGS[n]) for n, c in profile.items()
               if n != "face_embedding_node")


def test_the_microphone_profile_changes_only_the_fusions_audio_delay():
    profile = load_configs(PKG / "config" / "low_latency_microphone.yaml")
    fusion = dataclasses.asdict(profile["fusion_node"])
    assert fusion.pop("audio_delay") == 0.084
    expected = defaults(NODE_CONFIGS["fusion_node"])
    del expected["audio_delay"]
    assert fusion == expected
    assert all(dataclasses.asdict(c) == defaults(NODE_CONFIGS[n]) for n, c in profile.items() if n != "fusion_node")


def test_shipped_yaml_applies_under_a_namespace():
    data = yaml.safe_load(CONFIG.read_text())
    for name, cls in NODE_CONFIGS.items():
        assert node_values(data, name, "/robot1") == defaults(cls)
        assert node_values(data, name, "/lab/robot2") == defaults(cls)
    assert node_values(data, "someone_else", "/robot1") == {}


def test_every_yaml_parameter_has_a_comment():
    for line in CONFIG.read_text().splitlines():
        if re.match(r"^\s{4}\w+:\s*\S", line):
            assert re.search(r"#\s*\S", line), f"no comment: {line}"


def test_launch_file_names_existing_executables_the_yaml_and_overridable_parameters():
    tree = ast.parse(LAUNCH.read_text())
    consts = {t.id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Name)}
    assert set(consts["NODES"]) == set(PERCEPTION) and set(consts["NODES"]) <= _console_scripts()
    for name in consts["OVERRIDABLE"]:
        assert name == "use_sim_time" or all(name in defaults(NODE_CONFIGS[n]) for n in PERCEPTION), name
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "join"]
    assert any([a.value for a in c.args if isinstance(a, ast.Constant)] == ["config", "emo_perception.yaml"]
               for c in calls) and CONFIG.is_file()
    # backend and use_sim_time default to '' = not given: the params file decides
    declared = {c.args[0].value: c.keywords for c in ast.walk(tree) if isinstance(c, ast.Call)
                and getattr(c.func, "id", "") == "DeclareLaunchArgument"}
    for name in consts["OVERRIDABLE"]:
        default = next(k.value.value for k in declared[name] if k.arg == "default_value")
        assert default == "", name


def test_launch_description_builds_where_launch_ros_exists():
    pytest.importorskip("launch_ros", reason="launch_ros is not installable here (robots have it)")
    import importlib.util

    from launch import LaunchContext
    spec = importlib.util.spec_from_file_location("emo_launch", LAUNCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ld = mod.generate_launch_description()
    ctx = LaunchContext()
    for action in ld.entities:
        action.visit(ctx)
    nodes = mod._nodes(ctx)
    assert len(nodes) == 3


@pytest.mark.ros
def test_yaml_parses_as_ros_parameters_in_a_real_node_under_a_namespace():
    """rcl's own YAML parser (stricter than PyYAML) accepts the wildcard keys."""
    from emo_perception.nodes.fusion_node import FusionNode
    ctx = rclpy.Context()
    rclpy.init(context=ctx, args=["--ros-args", "--params-file", str(CONFIG), "-r", "__ns:=/robot1",
                                  "-p", "autostart:=false", "-p", "mode:=gru"])
    try:
        node = FusionNode(context=ctx)
        assert node.get_namespace() == "/robot1"
        assert node.get_parameter("fusion_model").value == "fusion_gru.json"
        assert node.get_parameter("mode").value == "gru"       # the command line wins over the file
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
