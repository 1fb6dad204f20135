"""Data sets on disk -> sessions (a recording with optional labels) and still face images.

Three layouts, each read as distributed (tests write a small fixture of each):

- `lab`: one folder per session under the root, each with one video (`*.mp4|mkv|avi|mov|webm`) with or
  without an audio track, optionally a separate audio file (`*.wav|flac|ogg|m4a`), and optionally
  `annotations.csv` with `time,valence,arousal[,person]`. A session without annotations still gives
  unlabeled faces for distillation. Split: `splits.csv` (`session,split` with split train|val|test) at
  the root, else a fixed hash of the session name (`val_fraction` held out). A splits.csv naming a
  session the root does not have is an error; sessions it does not name and sessions in `test`
  (neither trained nor evaluated) are warnings (DataSet.warnings), as is labelled data of which
  nothing is held out (held_out_warning, over every data set a stage reads).
- `recola`: RECOLA as distributed for AVEC 2016: `recordings_video/<name>.mp4`,
  `recordings_audio/<name>.wav`, `ratings_gold_standard/{arousal,valence}/<name>.arff` (40 ms frames).
  The AVEC partition is in the names (`train_*`, `dev_*`, `test_*`); dev is the held-out split (test
  has no public labels). A `partition.csv` (`name,partition`) at the root overrides the names.
- `affectnet`: AffectNet's `training.csv` / `validation.csv` (subDirectory_filePath, face_x, face_y,
  face_width, face_height, facial_landmarks, expression, valence, arousal) with the images under
  `Manually_Annotated_Images/` (or the root). Valence/arousal -2 is AffectNet's "unknown".
"""
from __future__ import annotations

import csv
import difflib
import hashlib
import pathlib
from dataclasses import dataclass, field

import numpy as np

from ..core.circumplex import EXPRESSION_LABELS
from ..recordings.annotations import AnnotationError, Annotations, merge, read_annotations, read_arff

FORMATS = ("lab", "recola", "affectnet")
SPLITS = ("train", "val", "test")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".m4a", ".mp3")

# AffectNet expression codes 0-7 (8-10: None, Uncertain, No-Face) -> the teacher's (FER2013) classes;
# contempt has no teacher class and is left unlabeled (-1): its faces still get the teacher's soft labels.
AFFECTNET_EXPRESSIONS = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "angry", "contempt")
AFFECTNET_TO_TEACHER = {i: (EXPRESSION_LABELS.index(n) if n in EXPRESSION_LABELS else -1)
                        for i, n in enumerate(AFFECTNET_EXPRESSIONS)}
AFFECTNET_UNKNOWN_VA = -2.0


class DatasetError(ValueError):
    """A data set root that cannot be read at all (a single bad session is skipped instead)."""


@dataclass
class Session:
    name: str
    split: str
    video: pathlib.Path
    audio: pathlib.Path | None = None         # None: the video's own audio track (if any)
    annotations: Annotations | None = None
    problem: str = ""                         # why it cannot be used ("" = usable)


@dataclass
class FaceImage:
    """A still face with its box in the image (AffectNet)."""
    path: pathlib.Path
    split: str
    box: tuple                                # x, y, w, h
    roll: float = 0.0                         # head roll from the landmarks' eyes (degrees)
    expression: int = -1                      # teacher class index, -1 unknown
    valence: float = float("nan")
    arousal: float = float("nan")


@dataclass
class DataSet:
    sessions: list = field(default_factory=list)
    images: list = field(default_factory=list)
    skipped: list = field(default_factory=list)   # (name, reason)
    warnings: list = field(default_factory=list)  # one line each: data that is read but not all used as it seems


def hashed_split(name: str, val_fraction: float) -> str:
    """A split that stays the same for a session name, whatever else is in the folder."""
    h = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "val" if h < val_fraction else "train"


def _read_splits(path: pathlib.Path, key: str, value: str) -> dict:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and (key not in rows[0] or value not in rows[0]):
        raise DatasetError(f"{path}: expected columns {key},{value}")
    out = {}
    for line, r in enumerate(rows, start=2):
        name, split = (r[key] or "").strip(), (r[value] or "").strip()
        if split not in SPLITS + ("dev",):
            raise DatasetError(f"{path}:{line}: {key} '{name}' has {value} '{split}'; allowed: "
                               f"{', '.join(SPLITS)} (dev = val)")
        split = "val" if split == "dev" else split
        if out.get(name, split) != split:
            raise DatasetError(f"{path}:{line}: {key} '{name}' is in both {out[name]} and {split}; give it one {value}")
        out[name] = split
    return out


def _names(names, most: int = 12) -> str:
    names = list(names)
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _check_named(path: pathlib.Path, named, present, what: str):
    """A splits/partition file that names a session the data set does not have is an error: the
    session it meant (a typo, a renamed folder) would silently take the default split instead."""
    missing = [n for n in named if n not in present]
    if missing:
        close = difflib.get_close_matches(missing[0], list(present), 1)
        raise DatasetError(f"{path} names {what} '{missing[0]}'"
                           + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                           + f" that {path.parent} does not have" + (f"; did you mean '{close[0]}'?" if close else "")
                           + f"; its {what}s: {_names(sorted(present)) or 'none'}")


def _split_warnings(root, sessions, splits_file: str | None, val_fraction: float) -> list:
    """Labelled sessions that emo_train will not use as they may seem to be meant: in split test
    (neither trained nor evaluated) or, by the hash split, none held out (nothing evaluated)."""
    out = []
    labelled = [s for s in sessions if s.annotations is not None]
    test = [s.name for s in labelled if s.split == "test"]
    if test:
        out.append(f"data set '{root}': {'session' if len(test) == 1 else 'sessions'} {_names(test)} in split test "
                   f"({splits_file}): emo_train neither trains nor evaluates on test (it reports val); evaluate "
                   "them with emo_eval, or give them split train or val")
    return out


NO_HELD_OUT = "no held-out data"


def held_out_warning(sources) -> str:
    """'' if some labelled session or image of `sources` ((description, DataSet) pairs: every data set a
    stage reads) is held out (val); else one line naming the labelled sessions and what would hold
    some out. Without it a stage trains and reports an empty 'val'."""
    labelled = [(src, s.name, s.split) for src, ds in sources for s in ds.sessions if s.annotations is not None]
    labelled += [(src, im.path.name, im.split) for src, ds in sources for im in ds.images
                 if im.expression >= 0 or np.isfinite(im.valence) or np.isfinite(im.arousal)]
    if not labelled or any(split == "val" for _, _, split in labelled):
        return ""
    where = "; ".join(f"{src}: {_names(n for x, n, _ in labelled if x == src)}" for src in dict.fromkeys(
        x for x, _, _ in labelled))
    return (f"{NO_HELD_OUT}: no labelled session or image is in split val ({where}), so nothing is evaluated "
            "and the summary's 'val' stays empty; hold sessions out in the lab root's splits.csv (session,split; "
            "split train|val|test), raise val_fraction (lab without splits.csv; allowed 0.0..0.9) or add a data "
            "set with a held-out split (RECOLA dev_*, AffectNet validation.csv)")


def _annotations(*paths) -> tuple[Annotations | None, str]:
    try:
        return read_annotations(*paths), ""
    except AnnotationError as err:
        return None, f"annotations unusable: {err}"


def read_lab(root, val_fraction: float = 0.25) -> DataSet:
    root = pathlib.Path(root)
    if not root.is_dir():
        raise DatasetError(f"lab data set '{root}' is not a folder")
    splits_path = root / "splits.csv"
    splits = _read_splits(splits_path, "session", "split") if splits_path.is_file() else {}
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    _check_named(splits_path, splits, {p.name for p in folders}, "session")
    out = DataSet()
    for folder in folders:
        videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        audios = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
        split = splits.get(folder.name, hashed_split(folder.name, val_fraction))
        if len(videos) != 1:
            out.skipped.append((folder.name, f"expected one video ({'|'.join(VIDEO_SUFFIXES)}), found {len(videos)}"))
            continue
        ann, problem = (None, "")
        if (folder / "annotations.csv").is_file():
            ann, problem = _annotations(folder / "annotations.csv")
        session = Session(folder.name, split, videos[0], audios[0] if audios else None, ann, problem)
        (out.skipped.append((folder.name, problem)) if problem else out.sessions.append(session))
    if not out.sessions and not out.skipped:
        raise DatasetError(f"lab data set '{root}' has no session folders")
    unnamed = [x.name for x in out.sessions if splits and x.name not in splits]
    if unnamed:
        out.warnings.append(f"data set '{root}': {splits_path.name} does not name {_names(unnamed)}: split by the "
                            f"hash of the name (val_fraction {val_fraction}): "
                            + ", ".join(f"{x.name} {x.split}" for x in out.sessions if x.name in unnamed[:12]))
    out.warnings += _split_warnings(root, out.sessions, splits_path.name if splits else None, val_fraction)
    return out


def read_recola(root) -> DataSet:
    root = pathlib.Path(root)
    video_dir, gold = root / "recordings_video", root / "ratings_gold_standard"
    if not video_dir.is_dir() or not gold.is_dir():
        raise DatasetError(f"'{root}' is not RECOLA as distributed for AVEC 2016: expected recordings_video/ "
                           "and ratings_gold_standard/")
    parts_path = root / "partition.csv"
    parts = _read_splits(parts_path, "name", "partition") if parts_path.is_file() else {}
    videos = sorted(p for p in video_dir.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    _check_named(parts_path, parts, {p.stem for p in videos}, "recording")
    out = DataSet()
    for video in videos:
        name = video.stem
        split = parts.get(name) or {"train": "train", "dev": "val", "test": "test"}.get(name.split("_")[0], "train")
        wav = root / "recordings_audio" / f"{name}.wav"
        arffs = [gold / d / f"{name}.arff" for d in ("valence", "arousal")]
        ann, problem = (None, "")
        if all(p.is_file() for p in arffs):
            try:   # the dimension is the folder's name (the files are both <name>.arff)
                ann = merge(read_arff(arffs[0], "valence"), read_arff(arffs[1], "arousal"))
            except AnnotationError as err:
                problem = f"annotations unusable: {err}"
        elif split != "test":
            problem = f"no gold standard ({arffs[0]} and {arffs[1]})"
        session = Session(name, split, video, wav if wav.is_file() else None, ann, problem)
        (out.skipped.append((name, problem)) if problem else out.sessions.append(session))
    # test recordings with gold standards (AVEC's test labels are not public; a partition.csv may say test)
    out.warnings += _split_warnings(root, out.sessions, parts_path.name if parts else "AVEC names", 0.0)
    return out


def _va(text) -> float:
    try:
        x = float(text)
    except (TypeError, ValueError):
        return float("nan")
    return float("nan") if x == AFFECTNET_UNKNOWN_VA or not -1 <= x <= 1 else x


def _roll(landmarks: str) -> float:
    """Degrees the eye line is rolled (68-point landmarks: 36-41 one eye, 42-47 the other)."""
    try:
        pts = np.array([float(v) for v in landmarks.split(";") if v.strip()]).reshape(-1, 2)
    except ValueError:
        return 0.0
    if len(pts) < 48:
        return 0.0
    a, b = pts[36:42].mean(axis=0), pts[42:48].mean(axis=0)
    return float(np.degrees(np.arctan2(b[1] - a[1], b[0] - a[0])))


def read_affectnet(root) -> DataSet:
    root = pathlib.Path(root)
    tables = {"train": root / "training.csv", "val": root / "validation.csv"}
    if not any(p.is_file() for p in tables.values()):
        raise DatasetError(f"'{root}' is not AffectNet: expected training.csv and/or validation.csv")
    images_dir = root / "Manually_Annotated_Images"
    images_dir = images_dir if images_dir.is_dir() else root
    out = DataSet()
    for split, table in tables.items():
        if not table.is_file():
            continue
        with open(table, newline="") as f:
            for line, row in enumerate(csv.DictReader(f), start=2):
                try:
                    box = tuple(int(float(row[k])) for k in ("face_x", "face_y", "face_width", "face_height"))
                    code = int(float(row["expression"]))
                    rel = row["subDirectory_filePath"].strip()
                except (KeyError, TypeError, ValueError) as err:
                    out.skipped.append((f"{table.name}:{line}", f"unreadable row ({err})"))
                    continue
                if code == 10:   # "No-Face"
                    out.skipped.append((rel, "AffectNet code 10 (no face)"))
                    continue
                out.images.append(FaceImage(images_dir / rel, split, box, _roll(row.get("facial_landmarks", "")),
                                            AFFECTNET_TO_TEACHER.get(code, -1), _va(row.get("valence")),
                                            _va(row.get("arousal"))))
    return out


def read_dataset(root, fmt: str, val_fraction: float = 0.25) -> DataSet:
    if fmt == "lab":
        return read_lab(root, val_fraction)
    if fmt == "recola":
        return read_recola(root)
    if fmt == "affectnet":
        return read_affectnet(root)
    raise DatasetError(f"data format '{fmt}' unknown; allowed: {', '.join(FORMATS)}")
