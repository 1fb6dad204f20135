"""The house's import contract, read from the source with `ast` (every import, also those inside
functions): a room imports only itself and rooms on lower floors, so doors run one way. Rooms on one
floor do not import each other (training and eval share recordings/ instead)."""
import ast
import pathlib
import sys

PKG = pathlib.Path(__file__).resolve().parents[1] / "emo_perception"

# Bottom floor first. Each room's README-level purpose is in its package docstring.
FLOORS = (
    ("core", "paths"),                      # pure numpy math, where the installed files are
    ("nets", "conversions", "recordings"),  # torch models; message <-> array; media, WAV, annotations
    ("inference",),                         # backends, model cards, export
    ("runtime",),                           # configs, builders, per-message handlers
    ("nodes", "training", "eval"),          # ROS nodes; offline training; offline evaluation
    ("cli",),                               # console scripts: argparse, exit codes, printing
)
FLOOR = {room: level for level, rooms in enumerate(FLOORS) for room in rooms}


def room_of(path: pathlib.Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_rooms(path: pathlib.Path):
    """(line, room) for every import of one of our modules in `path`."""
    package = list(path.relative_to(PKG).parent.parts)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == PKG.name and len(parts) > 1:
                    yield node.lineno, parts[1]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                parts = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == PKG.name:
                parts = node.module.split(".")[1:]
            else:
                continue
            if parts:
                yield node.lineno, parts[0]
            else:       # `from .. import conversions`: each name is a room
                for alias in node.names:
                    yield node.lineno, alias.name


def violations():
    found = []
    for path in sorted(PKG.rglob("*.py")):
        if path.parent == PKG and path.stem == "__init__":
            continue
        room = room_of(path)
        for line, target in imported_rooms(path):
            if target == room:
                continue
            if target not in FLOOR:
                found.append(f"{path.relative_to(PKG)}:{line} imports '{target}', a room missing from FLOORS")
            elif room not in FLOOR:
                found.append(f"{path.relative_to(PKG)}:{line} is in room '{room}', missing from FLOORS")
            elif FLOOR[target] >= FLOOR[room]:
                found.append(f"{path.relative_to(PKG)}:{line} ({room}, floor {FLOOR[room]}) imports {target} "
                             f"(floor {FLOOR[target]})")
    return found


def test_every_room_is_on_a_floor():
    rooms = {p.name for p in PKG.iterdir() if (p / "__init__.py").is_file()}
    rooms |= {p.stem for p in PKG.glob("*.py") if p.stem != "__init__"}
    assert rooms == set(FLOOR), \
        f"rooms without a floor: {rooms - set(FLOOR)}; floors without a room: {set(FLOOR) - rooms}"


def test_imports_run_down_only():
    assert violations() == []


def test_the_contract_catches_an_import_that_runs_up(tmp_path, monkeypatch):
    """The checker itself: an upward and a same-floor import are found, a downward one is not."""
    pkg = tmp_path / PKG.name
    for room in ("core", "training", "eval", "cli"):
        (pkg / room).mkdir(parents=True)
        (pkg / room / "__init__.py").write_text("")
    (pkg / "core" / "a.py").write_text("def f():\n    from ..cli import train\n")
    (pkg / "training" / "b.py").write_text("from emo_perception.eval.report import x\nfrom ..core import a\n")
    (pkg / "cli" / "c.py").write_text("from .. import training\n")
    monkeypatch.setattr(sys.modules[__name__], "PKG", pkg)
    assert sorted(violations()) == ["core/a.py:2 (core, floor 0) imports cli (floor 5)",
                                    "training/b.py:1 (training, floor 4) imports eval (floor 4)"]
