"""Gold-standard valence/arousal: CSV `time,valence,arousal[,person]` (seconds from the start of the
recording; column names in any case; comma, semicolon or tab separated) and RECOLA's ARFF (AVEC 2016
gold standard: frameTime, one value per 40 ms frame).

Errors name the file and what is wrong (missing columns, non-numbers, times that go back); NaN or
empty values are allowed and left out of the metrics (raters' gaps).
"""
from __future__ import annotations

import csv
import pathlib
from dataclasses import dataclass, field

import numpy as np


class AnnotationError(ValueError):
    """An annotation file that cannot be used; the text names the file and what is wrong."""


@dataclass
class Annotations:
    """Per person ('' = not named): times (s from the recording's start) and values."""
    source: str
    series: dict = field(default_factory=dict)   # person -> {"time", "valence", "arousal"} arrays

    def span(self) -> tuple[float, float]:
        times = np.concatenate([s["time"] for s in self.series.values()])
        return float(times.min()), float(times.max())


def _number(text, path, line, column):
    text = (text or "").strip()
    if text in ("", "nan", "NaN", "?"):
        return np.nan
    try:
        return float(text)
    except ValueError as err:
        raise AnnotationError(f"{path}: line {line}: {column} is {text!r}, not a number") from err


def _finish(path, rows) -> Annotations:
    if not rows:
        raise AnnotationError(f"{path}: no annotation rows")
    out = Annotations(str(path))
    for person in sorted({r[3] for r in rows}):
        t, v, a = (np.array([r[i] for r in rows if r[3] == person], np.float64) for i in range(3))
        if np.any(np.diff(t) <= 0):
            raise AnnotationError(f"{path}: times of person {person or '(unnamed)'} do not increase")
        if np.any(np.abs(v[np.isfinite(v)]) > 1) or np.any(np.abs(a[np.isfinite(a)]) > 1):
            raise AnnotationError(f"{path}: valence/arousal outside [-1, 1]; expected the circumplex scale")
        out.series[person] = {"time": t, "valence": v, "arousal": a}
    return out


SEPARATORS = ",;\t"    # detected from the header line: comma, semicolon (spreadsheets in many locales), tab


def _separator(header: str, path) -> str:
    """The separator the header line uses most (a one-column header: ',', reported as missing columns)."""
    counts = {sep: header.count(sep) for sep in SEPARATORS}
    best = max(counts, key=counts.get)
    if counts[best] and sum(1 for c in counts.values() if c == counts[best]) > 1:
        raise AnnotationError(f"{path}: the header {header.strip()!r} mixes separators; use one of comma, "
                              "semicolon or tab")
    return best if counts[best] else ","


def read_csv(path) -> Annotations:
    """Columns time, valence, arousal[, person] in any case and order, separated by comma, semicolon
    or tab (detected from the header). With a semicolon or tab, a decimal comma (0,5) is read as 0.5."""
    path = pathlib.Path(path)
    with open(path, newline="", encoding="utf-8-sig") as f:   # -sig: spreadsheets write a BOM
        sep = _separator(f.readline(), path)
        f.seek(0)
        reader = csv.reader(f, delimiter=sep)
        header = next(reader, [])
        cols = [c.strip() for c in header]
        index = {}
        for i, c in enumerate(cols):
            if c.lower() in index:
                raise AnnotationError(f"{path}: column {c!r} appears twice (names are case-insensitive)")
            index[c.lower()] = i
        missing = [c for c in ("time", "valence", "arousal") if c not in index]
        if missing:
            raise AnnotationError(f"{path}: columns {cols} lack {missing}; expected time,valence,arousal[,person]")
        rows = []
        for line, row in enumerate(reader, start=2):
            if not any(v.strip() for v in row):
                continue                        # a blank line (a trailing newline, a spreadsheet's last row)
            cell = {name: (row[i].strip() if i < len(row) else "") for name, i in index.items()}
            if sep != ",":
                cell.update({k: cell[k].replace(",", ".") for k in ("time", "valence", "arousal")})
            rows.append((_number(cell["time"], path, line, "time"), _number(cell["valence"], path, line, "valence"),
                         _number(cell["arousal"], path, line, "arousal"), cell.get("person", "")))
    return _finish(path, rows)


def read_arff(path, dimension: str | None = None) -> Annotations:
    """One RECOLA gold-standard ARFF file holds one dimension; its name (valence/arousal) is taken
    from `dimension` or the file name. The other dimension is NaN unless merged (merge())."""
    path = pathlib.Path(path)
    dimension = dimension or next((d for d in ("valence", "arousal") if d in path.name.lower()), None)
    if dimension is None:
        raise AnnotationError(f"{path}: cannot tell valence from arousal; "
                              "name the file *valence*.arff or *arousal*.arff")
    attrs, rows, data = [], [], False
    for line_no, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("%"):
            continue
        if line.lower().startswith("@attribute"):
            attrs.append(line.split()[1].strip("'\""))
        elif line.lower().startswith("@data"):
            data = True
        elif data:
            values = [v.strip().strip("'\"") for v in line.split(",")]
            if len(values) != len(attrs):
                raise AnnotationError(f"{path}: line {line_no} has {len(values)} values for {len(attrs)} attributes")
            row = dict(zip(attrs, values))
            if "frameTime" not in row:
                raise AnnotationError(f"{path}: no frameTime attribute; expected RECOLA's gold-standard ARFF")
            value = _number(row.get("GoldStandard", values[-1]), path, line_no, "GoldStandard")
            t = _number(row["frameTime"], path, line_no, "frameTime")
            rows.append((t, value if dimension == "valence" else np.nan,
                         value if dimension == "arousal" else np.nan, ""))
    if not data:
        raise AnnotationError(f"{path}: no @data section; not an ARFF file")
    return _finish(path, rows)


def merge(a: Annotations, b: Annotations) -> Annotations:
    """Valence from one ARFF and arousal from the other, on the same times."""
    out = Annotations(f"{a.source} + {b.source}")
    for person, s in a.series.items():
        o = b.series.get(person)
        if o is None or len(o["time"]) != len(s["time"]) or np.any(np.abs(o["time"] - s["time"]) > 1e-6):
            raise AnnotationError(f"{a.source} and {b.source} do not cover the same frames")
        out.series[person] = {"time": s["time"],
                              "valence": np.where(np.isfinite(s["valence"]), s["valence"], o["valence"]),
                              "arousal": np.where(np.isfinite(s["arousal"]), s["arousal"], o["arousal"])}
    return out


def read_annotations(*paths) -> Annotations:
    """CSV, or one or two ARFF files (valence and arousal)."""
    paths = [pathlib.Path(p) for p in paths]
    for p in paths:
        if not p.is_file():
            raise AnnotationError(f"annotation file '{p}' does not exist")
    if len(paths) == 1 and paths[0].suffix.lower() != ".arff":
        return read_csv(paths[0])
    if all(p.suffix.lower() == ".arff" for p in paths) and 1 <= len(paths) <= 2:
        parts = [read_arff(p) for p in paths]
        return parts[0] if len(parts) == 1 else merge(*parts)
    raise AnnotationError(f"annotation files {[str(p) for p in paths]}: expected one CSV or one/two ARFF files")


def write_csv(path, annotations: Annotations):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["time", "valence", "arousal", "person"])
        for person, s in annotations.series.items():
            for t, v, a in zip(s["time"], s["valence"], s["arousal"]):
                w.writerow([f"{t:.3f}", f"{v:.6f}", f"{a:.6f}", person])


def check_time_base(annotations: Annotations, duration_s: float, covers: str = "the recording covers 0..{:.2f} s",
                    slack_s: float = 0.04):
    """AnnotationError when the annotation times cannot be seconds from the start of a recording of
    `duration_s`: milliseconds (a common export), or another time base (epoch seconds, a clock)."""
    times = np.concatenate([s["time"] for s in annotations.series.values()])
    lo, hi = float(times.min()), float(times.max())
    where = covers.format(duration_s)

    def inside(t):
        return float(np.mean((t >= -slack_s) & (t <= duration_s + slack_s)))
    if inside(times) < 0.5 and inside(times / 1000.0) >= 0.9:
        raise AnnotationError(f"{annotations.source}: annotation times run {lo:g}..{hi:g} but {where}: they look "
                              "like milliseconds; times must be seconds from the start of the recording (divide by "
                              "1000)")
    if hi < -slack_s or lo > duration_s + slack_s:
        raise AnnotationError(f"{annotations.source}: annotations cover {lo:.2f}..{hi:.2f} s but {where}: a "
                              "different time base (times must be seconds from the start of the recording)")
