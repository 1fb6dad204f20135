"""The one runner: a single node (console scripts, `ros2 run`, `ros2 launch`), the three nodes in one
process (emo_perception_all) and the demo all start, spin and stop here.

Before ROS starts it answers --help with the nodes' parameters and topics, accepts `--params-file X`
also outside `--ros-args`, and checks every params file: a missing or malformed file is one line
and exit 1, a block that matches none of our nodes a warning (usually a misspelt node name).
"""
from __future__ import annotations

import dataclasses
import os
import sys
import textwrap

from ..runtime.config import NODE_CONFIGS
from ..runtime.params import ConfigError, describe
from ..runtime.params_file import load_params_file, unmatched_keys

CONFIG_FAILED = 1


def split_args(argv):
    """(ROS arguments for rclpy.init, params files named anywhere, --help asked for)."""
    argv = list(argv)
    prog, rest = argv[0] if argv else "emo_perception", argv[1:]
    ours, ros = rest, []
    if "--ros-args" in rest:
        i = rest.index("--ros-args")
        ours, ros = rest[:i], rest[i + 1:]
    help_asked = any(a in ("-h", "--help") for a in ours)
    files, leftover, k = [], [], 0
    while k < len(ours):
        if ours[k] == "--params-file" and k + 1 < len(ours):
            files.append(ours[k + 1])
            k += 2
            continue
        if ours[k].startswith("--params-file="):
            files.append(ours[k].split("=", 1)[1])
        elif ours[k] not in ("-h", "--help"):
            leftover.append(ours[k])
        k += 1
    files += [ros[j + 1] for j, a in enumerate(ros[:-1]) if a == "--params-file"]
    own = [a for f in files if f not in ros for a in ("--params-file", f)]
    # rcl applies parameter sources in command-line order, the last one winning: files named outside
    # --ros-args go first, so every -p NAME:=VALUE (and -p NODE:NAME:=VALUE) overrides them.
    return [prog, *leftover, "--ros-args", *own, *ros], files, help_asked


def namespace_of(ros_argv) -> str:
    for j, a in enumerate(ros_argv[:-1]):
        if a in ("-r", "--remap") and ros_argv[j + 1].startswith("__ns:="):
            return ros_argv[j + 1].split(":=", 1)[1]
    return ""


def help_text(prog: str, node_classes, description: str = "", default_params: bool = False) -> str:
    """--help: what the process is (`description`; a single node: its heading below), the options, then
    every node's topics and parameters."""
    default = ("; without one, the package's config/emo_perception.yaml" if default_params
               else "; without one, every parameter has its default")
    lines = [f"usage: {prog} [-h] [--params-file FILE] [--ros-args -p NAME:=VALUE -r FROM:=TO ...]", ""]
    if description:
        lines += [description.strip(), ""]
    options = [("-h, --help", "show this help and exit (no node starts)"),
               ("--params-file FILE", "a params YAML with a ros__parameters block per node (repeatable; also "
                                      f"inside --ros-args){default}"),
               ("--ros-args ...", "ROS arguments: -p NAME:=VALUE sets NAME in every node that declares it, "
                                  "-p NODE:NAME:=VALUE in NODE only, -r FROM:=TO remaps a topic (also __ns:=/NS, "
                                  "__node:=NAME)")]
    lines += ["options:"]
    lines += [textwrap.fill(text, 100, initial_indent=f"  {flag:20s}  ", subsequent_indent=" " * 24)
              for flag, text in options]
    lines += ["", "Parameters come from the params files first, then from every -p, the last one winning.", ""]
    for cls in node_classes:
        name = next(n for n, c in NODE_CONFIGS.items() if c is cls.CONFIG)
        lines += [f"{name}: {cls.DESCRIPTION}", "",
                  "  topics (relative names remap with -r, e.g. image:=/camera/image_raw):"]
        lines += [f"    {d:3s} {topic:32s} {typ:40s} {what}" for d, topic, typ, what in cls.TOPICS]
        lines += ["", f"  parameters (YAML block '/**/{name}: ros__parameters:', or -p NAME:=VALUE):"]
        for f in dataclasses.fields(cls.CONFIG):
            lines.append(f"    {f.name} ({type(f.default).__name__}, default {f.default!r}): {describe(f)}")
        lines.append("")
    return "\n".join(lines)


class Runner:
    """rclpy.init, the nodes, autostart, one executor, and exit once every node is finalized."""

    def __init__(self, node_classes, argv=None, default_params: bool = False, description: str = ""):
        self.node_classes, self.nodes = list(node_classes), []
        self.description, self.default_params = description, default_params
        argv = list(sys.argv if argv is None else argv)
        self.prog = os.path.basename(argv[0]) if argv else "emo_perception"
        self.ros_argv, self.files, self.help_asked = split_args(argv)
        if default_params and not self.files:
            from ..paths import default_params_file

            self.files = [str(default_params_file())]
            at = self.ros_argv.index("--ros-args") + 1      # first, so that -p overrides it (split_args)
            self.ros_argv[at:at] = ["--params-file", self.files[0]]
        self._initialised = False

    def start(self) -> int | None:
        """None when the nodes run; an exit code when there is nothing to run (help, bad config)."""
        if self.help_asked:
            print(help_text(self.prog, self.node_classes, self.description, self.default_params))
            return 0
        try:
            warnings = self._check_params_files()
        except ConfigError as err:
            print(f"[ERROR] {self.prog}: {err}", file=sys.stderr)
            return CONFIG_FAILED
        import rclpy

        try:
            rclpy.init(args=self.ros_argv)
        except RuntimeError as err:   # rcl's RCLError (a RuntimeError; its class is not public API)
            print(f"[ERROR] {self.prog}: ROS arguments {' '.join(self.ros_argv[1:])!r} rejected: "
                  f"{str(err).splitlines()[0]}", file=sys.stderr)
            return CONFIG_FAILED
        self._initialised = True
        for w in warnings:
            rclpy.logging.get_logger(self.prog).warning(w)
        known = {f.name for cls in self.node_classes for f in dataclasses.fields(cls.CONFIG)}
        self.nodes = [cls(known_elsewhere=known if len(self.node_classes) > 1 else ()) for cls in self.node_classes]
        for node in self.nodes:    # the first that fails ends the start: its one line is the answer, at once
            if not node.start():
                return CONFIG_FAILED
        return None

    def _check_params_files(self) -> list[str]:
        names, ns, warnings = list(NODE_CONFIGS), namespace_of(self.ros_argv), []
        for path in self.files:
            data = load_params_file(path)
            for key in unmatched_keys(data, names, ns):
                warnings.append(f"params file '{path}': block '{key}' matches none of {', '.join(names)}"
                                f"{f' in namespace {ns}' if ns else ''}; its parameters are not used")
        return warnings

    def spin(self, extra_nodes=(), until=None):
        import rclpy
        from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

        executor = SingleThreadedExecutor()
        for node in [*self.nodes, *extra_nodes]:
            executor.add_node(node)
        try:
            while rclpy.ok() and not all(n.finalized for n in self.nodes) and not (until and until()):
                executor.spin_once(timeout_sec=0.1)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        except RuntimeError:
            if rclpy.ok():
                raise
            # Ctrl-C shut the context down while a callback was publishing (rcl: "publisher's context is
            # invalid"): that is the shutdown asked for, not an error
        finally:
            executor.shutdown(timeout_sec=1.0)

    def close(self):
        import rclpy

        for node in self.nodes:
            if not node.finalized:   # stopped by a signal: still free models and flush logs
                node.release()
            node.destroy_node()
        if self._initialised:
            rclpy.try_shutdown()


def run(node_classes, argv=None, default_params: bool = False, description: str = "") -> int:
    runner = Runner(node_classes, argv, default_params, description)
    try:
        code = runner.start()
        if code is None:
            runner.spin()
            code = 0
        return code
    finally:
        runner.close()


def main_for(*node_classes, default_params: bool = False, description: str = ""):
    """The console-script main() of a process running `node_classes`; `description` opens its --help
    (needed for several nodes: else the first node's heading would)."""
    def main(args=None):
        return run(node_classes, args, default_params, description)
    return main
