"""What went wrong, said where the user looks: the problems the pipelines recorded while a bag was
evaluated, grouped by reason with counts (emo_eval, emo_demo), and the first error line of a node
log (the tools that start the nodes)."""
from __future__ import annotations

import re

MAX_REASONS = 5     # reasons printed; the rest are counted in one line
# rclpy's console format "[ERROR] [1796121677.59] [face_embedding_node]: text", and the runner's own
# "[ERROR] emo_perception_all: text" (printed before rclpy starts)
_ERROR_LINE = re.compile(r"^\[(ERROR|FATAL)\]\s*(?:\[[0-9.]+\]\s*)?(.*\S)")


def problem_lines(problems, limit: int = MAX_REASONS) -> list[str]:
    """(reason, text) pairs, as OfflinePerception.problems holds them -> one line per reason, in the
    order each reason first occurred (the first is usually the cause): its count and its first text."""
    first, counts = {}, {}
    for reason, text in problems:
        first.setdefault(reason, text)
        counts[reason] = counts.get(reason, 0) + 1
    lines = [f"{reason} ({counts[reason]}x): {text}" for reason, text in first.items()]
    if len(lines) > limit:
        rest = list(first)[limit:]
        lines = lines[:limit] + [f"and {len(rest)} more reason(s): {', '.join(rest)}"]
    return lines


def error_line(line: str) -> str | None:
    """A node log line -> '[ERROR] [node]: text' (timestamp dropped) if it is an error, else None."""
    m = _ERROR_LINE.match(line.strip())
    return f"[{m.group(1)}] {m.group(2)}" if m else None


def first_error_line(text: str) -> str | None:
    return next((e for e in map(error_line, text.splitlines()) if e), None)
