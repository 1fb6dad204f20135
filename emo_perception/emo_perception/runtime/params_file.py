"""ROS 2 parameter files (the YAML `--params-file` takes) read without ROS, with rcl's matching rules.

Keys are node names, absolute or with wildcards (`/**` any namespaces, `*` one name), and may be
nested by namespace; each ends in a `ros__parameters` block. The shipped file uses `/**/<node>`
so that it applies under any namespace.
"""
from __future__ import annotations

import pathlib
import re

import yaml

from .config import NODE_CONFIGS
from .params import ConfigError, from_values

PARAMS_KEY = "ros__parameters"
ROS_OWN = ("use_sim_time", "start_type_description_service")   # declared by rclpy itself


def load_params_file(path) -> dict:
    """The parsed file; ConfigError naming the file for a missing, unreadable or malformed one."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"params file '{path}' does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"params file '{path}' cannot be read: {err}") from err
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ConfigError(f"params file '{path}' is not valid YAML{line}: {getattr(err, 'problem', err)}") from err
    if not isinstance(data, dict) or not blocks(data):
        raise ConfigError(f"params file '{path}' has no '<node name>: {PARAMS_KEY}:' block; "
                          "expected e.g. '/**/fusion_node: {ros__parameters: {mode: prior}}'")
    return data


def blocks(data: dict, prefix: str = "") -> list[tuple[str, dict]]:
    """(node key as an absolute pattern, parameters) for every block, in file order."""
    out = []
    for key, value in data.items():
        if not isinstance(value, dict):
            continue
        name = prefix + "/" + str(key).strip("/")
        if PARAMS_KEY in value:
            out.append((name, value[PARAMS_KEY] or {}))
        else:
            out += blocks(value, name)
    return out


def _pattern(key: str) -> re.Pattern:
    parts = []
    for token in key.strip("/").split("/"):
        parts.append("(/[^/]+)*" if token == "**" else "/" + re.escape(token).replace(r"\*", "[^/]+"))
    return re.compile("".join(parts) + "$")


def matches(key: str, fully_qualified_name: str) -> bool:
    return bool(_pattern(key).match(fully_qualified_name))


def node_values(data: dict, node: str, namespace: str = "") -> dict:
    """Parameters for node `node` in `namespace`, merged in file order as rcl does."""
    fqn = "/".join(["", *filter(None, namespace.strip("/").split("/")), node])
    values = {}
    for key, params in blocks(data):
        if matches(key, fqn):
            values.update(params)
    return values


def unmatched_keys(data: dict, nodes, namespace: str = "") -> list[str]:
    """Block keys that apply to none of `nodes` (under `namespace`): usually a misspelt node name."""
    fqns = ["/".join(["", *filter(None, namespace.strip("/").split("/")), n]) for n in nodes]
    return [key for key, _ in blocks(data) if not any(matches(key, f) for f in fqns)]


def load_node_config(path, node: str, namespace: str = ""):
    """The config of `node` from a params file (defaults for whatever it does not set)."""
    data = load_params_file(path)
    return from_values(NODE_CONFIGS[node], node_values(data, node, namespace), node, where=str(path), ignore=ROS_OWN)


def load_configs(path=None, namespace: str = "") -> dict:
    """Every node's config from a params file (the package's own when `path` is None)."""
    from ..paths import default_params_file

    path = path or default_params_file()
    return {node: load_node_config(path, node, namespace) for node in NODE_CONFIGS}
