"""docs/ros_api.md, rendered from what the nodes declare: each node class's DESCRIPTION and TOPICS and
its config dataclass (runtime/config.py: every field's default, description and allowed values), the
same tables `<node> --help` prints. test/test_docs.py keeps the file equal to `render()`.

    python -m emo_perception.nodes.ros_api_doc > docs/ros_api.md      # from the repository root
"""
from __future__ import annotations

import dataclasses
from importlib.metadata import entry_points

from ..runtime.config import NODE_CONFIGS
from .audio_embedding_node import AudioEmbeddingNode
from .face_embedding_node import FaceEmbeddingNode
from .fusion_node import FusionNode
from .live_view_node import LiveViewNode
from .session_logger_node import SessionLoggerNode

NODE_CLASSES = (FaceEmbeddingNode, AudioEmbeddingNode, FusionNode, SessionLoggerNode, LiveViewNode)
REGENERATE = "python -m emo_perception.nodes.ros_api_doc > docs/ros_api.md"
DIRECTION = {"in": "subscribes", "out": "publishes", "srv": "service"}

INTRO = """\
Every node's topics and parameters. Relative topic names are remapped (`-r image:=/camera/image_raw`, or
the launch file's arguments); parameters go in a params file, one block `/**/<node>: ros__parameters:` per
node ([config/emo_perception.yaml](../emo_perception/config/emo_perception.yaml) is the commented
default), or `-p NAME:=VALUE`. A value outside its range or choices, a wrong type (an integer for a float
is fine) or a misspelt name fails at configure with one line naming the parameter, the value and what is
allowed (exit 1). `<executable> --help` and `ros2 param describe <node> <name>` show the same texts."""


def _cell(text) -> str:
    """Text for a table cell inside a code span."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _text(text) -> str:
    """Prose for a table cell: `<` escaped outside code spans, or `<participant>` would read as an HTML tag."""
    parts = _cell(text).split("`")
    return "`".join(part if i % 2 else part.replace("<", "&lt;") for i, part in enumerate(parts))


def _value(value) -> str:
    """A default as it is written in the YAML file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _allowed(f: dataclasses.Field) -> str:
    m = f.metadata
    if m.get("choices"):
        return ", ".join(f"`{c}`" for c in m["choices"])
    if m.get("range"):
        return f"{m['range'][0]} to {m['range'][1]}"
    return ""


def _node_name(cls) -> str:
    return next(name for name, config in NODE_CONFIGS.items() if config is cls.CONFIG)


def _executables(cls) -> list[str]:
    """The console scripts that start this node on its own (setup.py's entry points)."""
    target = f"{cls.__module__}:main"
    return sorted({ep.name for ep in entry_points(group="console_scripts") if ep.value == target})


def _fields(config) -> list[dataclasses.Field]:
    """The node's own parameters first (declared or given another default by its config), then the
    ones every node, or every node that runs a model, shares."""
    own = list(vars(config).get("__annotations__", {}))       # in the order the config declares them
    fields = {f.name: f for f in dataclasses.fields(config)}
    return [fields[n] for n in own if n in fields] + [f for n, f in fields.items() if n not in own]


def _section(cls) -> list[str]:
    name, config = _node_name(cls), cls.CONFIG
    scripts = ", ".join(f"`{s}`" for s in _executables(cls)) or f"`python -m {cls.__module__}`"
    lines = [f"## {name}", "", _text(cls.DESCRIPTION) + ".", "",
             f"Started by {scripts}; parameters in `{config.__name__}` (`{config.__module__}`).", "",
             "| direction | topic | type | what |", "|---|---|---|---|"]
    lines += [f"| {DIRECTION.get(d, d)} | `{_cell(topic)}` | `{_cell(typ)}` | {_text(what)} |"
              for d, topic, typ, what in cls.TOPICS]
    lines += ["", "| parameter | type | default | allowed | description |", "|---|---|---|---|---|"]
    lines += [f"| `{f.name}` | {type(f.default).__name__} | `{_cell(_value(f.default))}` | {_allowed(f)} | "
              f"{_text(f.metadata['description'])} |" for f in _fields(config)]
    return lines + [""]


def render() -> str:
    header = (f"<!-- Generated from the node classes and runtime/config.py: do not edit; regenerate with\n"
              f"     {REGENERATE}\n     (test/test_docs.py fails when this file is stale) -->")
    lines = [header, "", "# ROS API", "", INTRO, ""]
    lines += [f"- [{_node_name(cls)}](#{_node_name(cls)}): {_text(cls.DESCRIPTION)}" for cls in NODE_CLASSES]
    lines.append("")
    for cls in NODE_CLASSES:
        lines += _section(cls)
    return "\n".join(lines)


def main() -> int:
    print(render(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
