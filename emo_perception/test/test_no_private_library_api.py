"""No private API of libraries: an rclpy release may rename any underscored member or module, and then
every node would fail at start-up. Read from the source with `ast`: every `x._name` our code reads
must be a name our own code assigns or defines somewhere, and no import names an underscored or
`impl` module of a library."""
import ast
import pathlib

PKG = pathlib.Path(__file__).resolve().parents[1] / "emo_perception"
DUNDER_OK = lambda name: name.startswith("__") and name.endswith("__")  # noqa: E731 - Python's own protocol


def _trees():
    return [(p, ast.parse(p.read_text(), str(p))) for p in sorted(PKG.rglob("*.py"))]


def _own_private_names(trees) -> set:
    """Underscored names our code defines: attributes it assigns, functions, classes, arguments."""
    own = set()
    for _, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
                own.add(node.attr)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(node.name)
            elif isinstance(node, ast.arg):
                own.add(node.arg)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setattr" and len(node.args) > 1 \
                    and isinstance(node.args[1], ast.Constant):
                own.add(node.args[1].value)
    return {n for n in own if isinstance(n, str) and n.startswith("_")}


def private_uses(trees) -> list:
    own, found = _own_private_names(trees), []
    for path, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not DUNDER_OK(node.attr) \
                    and node.attr not in own:
                found.append(f"{path.relative_to(PKG)}:{node.lineno} reads .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                parts = node.module.split(".")
                if parts[0] != PKG.name and any((p.startswith("_") and not DUNDER_OK(p)) or p == "impl" for p in parts):
                    found.append(f"{path.relative_to(PKG)}:{node.lineno} imports {node.module}")
    return sorted(found)


def test_no_underscored_library_members_or_modules():
    assert private_uses(_trees()) == []


def test_the_check_finds_what_the_nodes_used_to_read():
    """What nodes/node_support.py and nodes/runner.py did before (rclpy 9, Kilted)."""
    code = ("class N(LifecycleNode):\n    def f(self):\n        return self._parameter_overrides, self._parameters\n"
            "from rclpy.impl.implementation_singleton import rclpy_implementation\n")
    assert private_uses([(PKG / "nodes" / "x.py", ast.parse(code))]) == [
        "nodes/x.py:3 reads ._parameter_overrides", "nodes/x.py:3 reads ._parameters",
        "nodes/x.py:4 imports rclpy.impl.implementation_singleton"]
