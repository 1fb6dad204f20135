"""Help that helps: every console script of setup.py answers --help with exit 0, in-process; its
description does not stop mid-sentence; every option and positional argument has a help text, and
one with a default says it. The node scripts answer from the runner's help_text: the options of the
usage line explained, every parameter described, emo_perception_all opening with what it is."""
import argparse
import importlib
import pathlib
import re

import pytest

SETUP = pathlib.Path(__file__).resolve().parents[1] / "setup.py"
SCRIPTS = dict(re.findall(r'"(\w+) = ([\w.]+):main"', SETUP.read_text()))
CLI = sorted(n for n, m in SCRIPTS.items() if ".cli." in m)
NODES = sorted(n for n, m in SCRIPTS.items() if ".nodes." in m)


def test_setup_py_lists_the_console_scripts():
    assert len(SCRIPTS) >= 13 and "emo_bag" in CLI and "emo_perception_all" in NODES and not set(CLI) & set(NODES)


def _parsers(script, monkeypatch, capsys):
    """main(['--help']) in-process: its exit status, what it printed, and every parser it parses with
    (the sub-commands' parsers too)."""
    seen = []
    parse_args = argparse.ArgumentParser.parse_args

    def recording(self, *args, **kwargs):
        seen.append(self)
        return parse_args(self, *args, **kwargs)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", recording)
    main = importlib.import_module(SCRIPTS[script]).main
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    out = capsys.readouterr().out
    parsers, k = list(seen), 0
    while k < len(parsers):   # argparse keeps a parser's arguments in _actions (no public accessor)
        for action in parsers[k]._actions:
            if isinstance(action.choices, dict):
                parsers += [p for p in action.choices.values() if isinstance(p, argparse.ArgumentParser)]
        k += 1
    return done.value.code, out, parsers


def _states(text: str, default) -> bool:
    """The help names the default (10.0 may read 10)."""
    forms = {str(default)} | ({f"{default:g}"} if isinstance(default, float) else set())
    return bool(forms & set(re.findall(r"[\w./+-]+", text)) or any(f in text for f in forms if len(f) > 3))


def _undocumented(parser) -> list:
    """Arguments without a help text, and defaults the help does not state."""
    bad = []
    for action in parser._actions:
        name = "/".join(action.option_strings) or action.dest
        text = action.help or ""
        if not text.strip() or text == argparse.SUPPRESS:
            bad.append(f"{parser.prog} {name}: no help")
        elif action.default not in (None, argparse.SUPPRESS) and action.default \
                and not isinstance(action.default, bool) \
                and "%(default)" not in text and not _states(text, action.default):
            bad.append(f"{parser.prog} {name}: default {action.default!r} not in its help {text!r}")
    return bad


@pytest.mark.parametrize("script", CLI)
def test_every_console_script_documents_every_option_and_finishes_its_sentence(script, monkeypatch, capsys):
    code, out, parsers = _parsers(script, monkeypatch, capsys)
    assert code == 0 and out.startswith("usage:"), out[:300]
    assert parsers, f"{script} parsed nothing"
    for parser in parsers:
        first = (parser.description or "").strip().split("\n\n")[0].strip()
        assert first and first[-1] in ".:)", f"{parser.prog}: description stops mid-sentence: {first!r}"
    assert sum((_undocumented(p) for p in parsers), []) == []


def test_emo_train_help_lists_the_settings_of_each_stage(monkeypatch, capsys):
    import dataclasses

    from emo_perception.training.config import GenerateConfig, TrainConfig

    _, out, _ = _parsers("emo_train", monkeypatch, capsys)
    sections = re.split(r"\n  (every stage|face|audio|fusion|generate) \(", out)
    listed = {sections[i]: set(re.findall(r"\n    (\w+) \(", sections[i + 1])) for i in range(1, len(sections), 2)}
    fields = {f.name: f.metadata["stages"] for f in dataclasses.fields(TrainConfig)}
    assert listed["every stage"] == {n for n, s in fields.items() if len(s) == 3}
    for stage in ("face", "audio", "fusion"):
        assert listed[stage] == {n for n, s in fields.items() if stage in s and len(s) < 3}, stage
    assert listed["generate"] == {f.name for f in dataclasses.fields(GenerateConfig)} >= {"sessions", "seconds",
                                                                                         "recola_sessions"}
    assert "chunk_s (float, default 8.0): " in out
    assert "audio_model" not in "".join(sections[sections.index("audio") + 1])


def _node_help(script, capsys) -> str:
    main = importlib.import_module(SCRIPTS[script]).main
    assert main([script, "--help"]) == 0           # answered before ROS starts: no rclpy.init
    return capsys.readouterr().out


@pytest.mark.parametrize("script", NODES)
def test_node_scripts_explain_their_options_and_every_parameter(script, capsys):
    out = _node_help(script, capsys)
    usage = out.splitlines()[0]
    assert usage.startswith(f"usage: {script} ")
    options = out.split("\noptions:\n", 1)[1].split("\n\n", 1)[0]
    for flag in re.findall(r"\[(-[-\w]+)", usage):                 # -h, --params-file, --ros-args
        line = next((ln for ln in options.splitlines() if re.match(rf"  (-\w, )?{flag}\b", ln)), "")
        assert len(line.split("  ")[-1].strip()) > 10, f"{script} {flag} unexplained: {options}"
    params = re.findall(r"\n    (\w+) \((?:bool|int|float|str|list)[^)]*\): (.*)", out)
    assert params and all(desc.strip() for _, desc in params), script


def test_emo_perception_all_help_opens_with_what_the_process_is(capsys):
    out = _node_help("emo_perception_all", capsys)
    opening = out.split("\n\n", 1)[1].lstrip()
    assert opening.startswith("emo_perception_all: the three nodes in one process"), opening[:200]
    assert "without one, the package's config/emo_perception.yaml" in " ".join(out.split())
    assert out.index("emo_perception_all:") < out.index("face_embedding_node:") < out.index("fusion_node:")
    single = _node_help("face_embedding_node", capsys)
    assert "without one, every parameter has its default" in " ".join(single.split())
