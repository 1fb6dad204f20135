"""Bag evaluation: the runtime pipelines over every message of a bag (offline, deterministic, as fast
as the CPU allows), or the AffectArray a live run recorded; predictions put on the 25 Hz annotation
grid by header stamp; CCC, PCC and RMSE per session, per annotated person and pooled over sessions,
each naming the track it compared and over which time spans (the rule: match_people)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import conversions
from ..core.alignment import PERIOD     # the grid: RECOLA's annotation rate, 25 Hz
from ..core.annotated_people import person_tracks
from ..core.metrics import ccc, pcc, rmse
from ..core.speaker import VOICE_ONLY, VOICE_ONLY_NAME, track_name
from ..runtime.offline import AUDIO, AUDIO_INFO, COMPRESSED_IMAGE, IMAGE, OfflinePerception
from ..recordings.annotations import AnnotationError, Annotations, check_time_base
from .bags import BagError, read_messages, topic_types
from .from_media import ANNOTATION_MODE

KINDS = {"sensor_msgs/msg/Image": IMAGE, "sensor_msgs/msg/CompressedImage": COMPRESSED_IMAGE,
         "audio_common_msgs/msg/AudioDataStamped": AUDIO, "audio_common_msgs/msg/AudioInfo": AUDIO_INFO}
AFFECT = "emo_perception_msgs/msg/AffectArray"


@dataclass
class SessionResult:
    bag: str
    frames: list                              # AffectFrame, in time order
    start: float                              # first sensor stamp: time 0 of the session
    inputs: dict = field(default_factory=dict)  # kind -> messages
    counts: dict = field(default_factory=dict)  # rejected messages by reason
    problems: list = field(default_factory=list)
    annotations: Annotations | None = None
    complete: bool = True                     # False: the bag ended in a broken message


def _sensor_messages(bag, result: SessionResult):
    """Sensor messages of the bag in recorded order; annotations collected on the side."""
    gold = {}
    try:
        for topic, msgtype, t_ns, msg in read_messages(bag, types={AFFECT, *KINDS}):
            if msgtype == AFFECT and msg.mode == ANNOTATION_MODE:
                t = conversions.stamp_to_seconds(msg.header.stamp)
                for p in msg.people:
                    gold.setdefault(p.track_id, []).append((t, p.valence, p.arousal))
                continue
            kind = KINDS.get(msgtype)
            if kind is None:
                continue
            result.inputs[kind] = result.inputs.get(kind, 0) + 1
            if kind in (IMAGE, COMPRESSED_IMAGE, AUDIO) and (result.start is None or math.isnan(result.start)):
                result.start = conversions.stamp_to_seconds(msg.header.stamp)
            yield kind, msg, t_ns * 1e-9     # the receive time: what stamp_source 'arrival' places by
    except BagError as err:
        result.complete = False
        result.problems.append(("bag", str(err)))
    if gold:
        result.annotations = Annotations(f"{bag} (/annotations)", {
            person: {"time": np.array([r[0] for r in rows]), "valence": np.array([r[1] for r in rows]),
                     "arousal": np.array([r[2] for r in rows])} for person, rows in gold.items()})


def _other_image_kind(bag, configs: dict) -> str | None:
    """A bag with both Image and CompressedImage (image_transport records both): the kind the face node
    would not subscribe to (it takes one, by use_compressed), so offline sees each frame once, as live."""
    try:
        types = set(topic_types(bag).values())
    except BagError:
        return None
    if not {k for k, v in KINDS.items() if v in (IMAGE, COMPRESSED_IMAGE)} <= types:
        return None
    return IMAGE if configs["face_embedding_node"].use_compressed else COMPRESSED_IMAGE


def run_offline(bag, configs: dict, progress: bool = False) -> SessionResult:
    """The runtime pipelines over the bag's camera and microphone messages."""
    result = SessionResult(str(bag), [], float("nan"))
    perception = OfflinePerception(configs)
    messages = _sensor_messages(bag, result)
    skip = _other_image_kind(bag, configs)
    if skip:
        result.problems.append(("images_ignored", f"the bag has raw and compressed images: only "
                                f"{'compressed' if skip == IMAGE else 'raw'} ones are used, as the face node "
                                f"with use_compressed {skip == IMAGE} subscribes"))
        messages = (m for m in messages if m[0] != skip)
    if progress:
        from tqdm import tqdm
        messages = tqdm(messages, desc=f"emo_eval {bag}", unit="msg")
    result.frames = perception.replay(messages)
    result.counts, result.problems = dict(perception.counts), result.problems + perception.problems
    if not any(k in result.inputs for k in (IMAGE, COMPRESSED_IMAGE, AUDIO)):
        broken = [text for reason, text in result.problems if reason == "bag"]
        if broken:            # nothing could be read at all: that is the error, not the missing topics
            raise BagError(broken[0])
        raise BagError(f"bag '{bag}' has no camera (sensor_msgs/Image or CompressedImage) and no microphone "
                       "(audio_common_msgs/AudioDataStamped) messages; topics are found by type")
    if result.annotations is not None:   # bag annotations are stamped: make them relative
        for s in result.annotations.series.values():
            s["time"] = s["time"] - result.start
    return result


def recorded_session(bag, affect_msgs, start: float) -> SessionResult:
    """A live run's AffectArray messages (rclpy or rosbags) as a session."""
    frames = sorted((conversions.affect_from_msg(m) for m in affect_msgs), key=lambda f: f.step.time)
    return SessionResult(str(bag), frames, start)


# ------------------------------------------------------------------------------ metrics
UNNAMED = "(unnamed)"     # how an annotation without a person column is named in metrics.json and predictions.csv
SPAN_GAP_S = 0.5          # steps closer than this belong to one time span
MIN_STEPS = 2             # steps a score needs (CCC, PCC and RMSE of one step mean nothing)

RULE_NAMED = "annotated person named by its track id"
RULE_OPTION = "chosen with --person"
RULE_LONGEST = "the face track seen in most steps"
RULE_LEFT_TO_RIGHT = ("the most-seen face tracks, matched left to right (mean box centre) to the annotated "
                      "people in sorted order")
RULE_VOICE = "the voice-only estimate (no face was seen)"


def person_label(person: str) -> str:
    return person or UNNAMED


def track_label(track: str) -> str:
    """A track as files, reports and people name it: the voice-only estimate ("") is 'voice'."""
    return track_name(track)


def track_of(label: str) -> str:
    """track_label's inverse."""
    return VOICE_ONLY if label == VOICE_ONLY_NAME else label


def _annotation_text(person: str) -> str:
    return f"annotated person {person}" if person else "the annotation (no person column)"


def _grid(result: SessionResult, t: float) -> float:
    return round((t - result.start) / PERIOD) * PERIOD


def prediction_series(result: SessionResult) -> dict:
    """track id -> {"time" (relative, on the grid), "valence", "arousal"}; "" = voice only."""
    series = {}
    for f in result.frames:
        t = _grid(result, f.step.time)
        for p in f.step.people:
            s = series.setdefault(p.track_id, {"time": [], "valence": [], "arousal": []})
            s["time"].append(t)
            s["valence"].append(p.valence)
            s["arousal"].append(p.arousal)
    return {k: {n: np.asarray(v, np.float64) for n, v in s.items()} for k, s in series.items()}


def spans(times) -> list:
    """[[first, last], ...] seconds: runs of steps less than SPAN_GAP_S apart."""
    t = np.sort(np.asarray(times, np.float64))
    if not t.size:
        return []
    cut = np.flatnonzero(np.diff(t) > SPAN_GAP_S + 1e-9)
    starts, ends = np.r_[0, cut + 1], np.r_[cut, t.size - 1]
    return [[round(float(t[a]), 3), round(float(t[b]), 3)] for a, b in zip(starts, ends)]


def format_spans(sp: list) -> str:
    return ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in sp) or "never"


def track_summary(result: SessionResult) -> dict:
    """track id -> steps, face/voice steps, the spans it was seen, its means: what the console and the
    report both print about each person."""
    rows = {}
    for f in result.frames:
        t = _grid(result, f.step.time)
        for p in f.step.people:
            rows.setdefault(p.track_id, []).append((t, p.valence, p.arousal, p.confidence, p.face, p.voice))
    out = {}
    for track, r in sorted(rows.items()):
        a = np.array(r, np.float64)
        face_t = a[a[:, 4] > 0, 0]
        out[track] = {"steps": len(r), "face_steps": int(face_t.size), "voice_steps": int((a[:, 5] > 0).sum()),
                      "spans_s": spans(a[:, 0]), "face_spans_s": spans(face_t),
                      "mean_valence": round(float(np.mean(a[:, 1])), 3),
                      "mean_arousal": round(float(np.mean(a[:, 2])), 3),
                      "mean_confidence": round(float(np.mean(a[:, 3])), 3)}
    return out


def _faces(result: SessionResult) -> dict:
    """Face rows as person_tracks reads them: one per step a track's face was seen."""
    track, box = [], []
    for f in result.frames:
        for p in f.step.people:
            if p.track_id and p.face and p.box is not None:
                track.append(p.track_id)
                box.append(p.box)
    return {"track": np.array(track, dtype=str), "box": np.array(box, np.float64).reshape(-1, 4)}


def parse_person_options(options) -> dict:
    """--person values -> {annotated person (None: the annotation's only one): track}."""
    out = {}
    for opt in options or []:
        name, sep, track = opt.rpartition("=")
        key = name.strip() if sep else None
        if not track.strip() or key in out:
            raise AnnotationError(f"--person {opt!r}: expected TRACK (an annotation of one person) or NAME=TRACK, "
                                  "once per annotated person")
        out[key] = track.strip()
    if None in out and len(out) > 1:
        raise AnnotationError("--person: a bare TRACK names the track of an annotation of one person; "
                              "with several, give NAME=TRACK for each")
    return out


@dataclass
class Match:
    person: str        # annotated person ("" = the annotation has no person column)
    track: str         # the predicted track it is compared with ("" = voice only)
    rule: str          # how the track was chosen (RULE_*)


def match_people(result: SessionResult, annotations: Annotations, chosen: dict | None = None) -> tuple[list, list]:
    """Which track each annotated person is compared with, and warnings. The rule (docs/evaluation.md):
    --person if given; else annotated people named by track id are those tracks; else (no person column,
    or names that are not track ids) the rule training uses (core/annotated_people.py): one person ->
    the face track seen in most steps, several -> the most-seen face tracks left to right; a single
    annotation with no face seen at all -> the voice-only estimate."""
    series = prediction_series(result)
    persons = sorted(annotations.series)
    tracks = sorted(series)
    shown = ", ".join(track_label(t) for t in tracks)
    if chosen:
        if None in chosen:
            if len(persons) != 1:
                raise AnnotationError(f"--person {chosen[None]}: {annotations.source} annotates {len(persons)} people "
                                      f"({', '.join(map(person_label, persons))}); give NAME=TRACK for each")
            chosen = {persons[0]: chosen[None]}
        unknown = sorted(set(chosen) - set(persons))
        if unknown:
            raise AnnotationError(f"--person: {unknown} are not annotated people of {annotations.source} "
                                  f"(it annotates {', '.join(map(person_label, persons))})")
        missing = [p for p in persons if p not in chosen]
        if missing:
            raise AnnotationError(f"--person: no track for annotated people {[person_label(p) for p in missing]}; "
                                  "give NAME=TRACK for every annotated person")
        for person, track in chosen.items():
            if track_of(track) not in series:
                raise AnnotationError(f"--person {track}: session {result.bag} has no track {track!r}; its tracks are "
                                      f"{shown or 'none'}")
        return [Match(p, track_of(chosen[p]), RULE_OPTION) for p in persons], []
    named = [p for p in persons if p and p in series]
    if named and len(named) < len(persons):
        raise AnnotationError(f"{annotations.source}: annotated people {[person_label(p) for p in persons]}: "
                              f"{named} are track ids, the others are not; name every person by track id, or "
                              "none (then they are matched to the most-seen face tracks, left to right)")
    if named:
        return [Match(p, p, RULE_NAMED) for p in persons], []
    faces = _faces(result)
    if not faces["track"].size:
        if len(persons) == 1 and "" in series:
            return [Match(persons[0], "", RULE_VOICE)], []
        raise AnnotationError(f"{result.bag}: no face was seen, so the {len(persons)} annotated people cannot be "
                              "told apart")
    found = {p: str(t) for p, t in person_tracks(faces, persons).items()}
    rule = RULE_LONGEST if len(persons) == 1 else RULE_LEFT_TO_RIGHT
    warnings = [f"annotated person {person_label(p)}: only {len(found)} face tracks were seen; not compared"
                for p in persons if p not in found]
    return [Match(p, found[p], rule) for p in persons if p in found], warnings


def pair(pred: dict, gold: dict) -> dict:
    """Prediction and gold at the same grid times, finite values only: dim -> (prediction, gold, grid
    time). Each gold sample goes to its nearest 25 Hz step (an annotation at another rate is sampled
    there; a sample exactly half a step away, as 10 Hz has every other one, goes to the even step)."""
    idx = np.round(gold["time"] / PERIOD).astype(np.int64)
    pos = {int(i): j for j, i in enumerate(np.round(pred["time"] / PERIOD).astype(np.int64))}
    out = {}
    for dim in ("valence", "arousal"):
        rows = [(pred[dim][pos[int(i)]], gold[dim][j], i * PERIOD) for j, i in enumerate(idx)
                if int(i) in pos and abs(gold["time"][j] - i * PERIOD) <= PERIOD / 2 + 1e-9   # float noise at 1/2
                and np.isfinite(gold[dim][j]) and np.isfinite(pred[dim][pos[int(i)]])]
        out[dim] = tuple(np.array([r[k] for r in rows], np.float64) for k in range(3))
    return out


def scores(paired: dict, what: str = "") -> tuple[dict, list]:
    """CCC, PCC, RMSE and n per dimension; a score that cannot be computed is None, with a warning why."""
    out, warnings = {}, []
    for dim, (p, g, *_) in paired.items():
        n = int(len(p))
        if n < MIN_STEPS:
            out[dim] = {"ccc": None, "pcc": None, "rmse": None, "n": n}
            warnings.append(f"{what}{dim}: not scored: {n} step{'' if n == 1 else 's'} where the prediction and "
                            f"the annotation both have a value (a score needs {MIN_STEPS})")
            continue
        flat_p, flat_g = bool(np.ptp(p) == 0), bool(np.ptp(g) == 0)
        entry = {"ccc": ccc(p, g), "pcc": pcc(p, g), "rmse": rmse(p, g), "n": n}
        if flat_p or flat_g:
            side = "prediction and annotation are" if flat_p and flat_g else \
                ("prediction is" if flat_p else "annotation is")
            entry["pcc"] = None
            why = f"the {side} constant over the {n} compared steps"
            if flat_p and flat_g and p[0] == g[0]:
                entry["ccc"] = None
                warnings.append(f"{what}{dim}: CCC and PCC undefined: {why}")
            else:
                warnings.append(f"{what}{dim}: PCC undefined: {why}")
        out[dim] = entry
    return out, warnings


def _time_base(result: SessionResult, annotations: Annotations, series: dict):
    """AnnotationError when the annotation's times cannot be seconds from the start of this recording."""
    check_time_base(annotations, max(s["time"].max() for s in series.values()))


def session_pairs(result: SessionResult, annotations: Annotations, chosen: dict | None = None) -> tuple[dict, list]:
    """annotated person -> (Match, paired arrays) by match_people's rule, and the warnings a reader of
    the scores must see. AnnotationError when they cannot be compared at all."""
    series = prediction_series(result)
    if not series:
        why = "; ".join(sorted({reason for reason, _ in result.problems}))
        raise AnnotationError(f"{result.bag}: no predictions to compare ("
                              + (f"the nodes rejected their input: {why}" if why else "no face and no voice found")
                              + ")")
    _time_base(result, annotations, series)
    matches, warnings = match_people(result, annotations, chosen)
    out = {m.person: (m, pair(series[m.track], annotations.series[m.person])) for m in matches}
    stats = track_summary(result)
    faces = {t: s for t, s in stats.items() if t and s["face_steps"]}
    compared = {m.track for m in matches}
    implicit = any(m.rule not in (RULE_NAMED, RULE_OPTION) for m in matches)
    if len(faces) > 1 and (implicit or set(faces) - compared):     # not when each face is annotated by its id
        at_once = sum(1 for f in result.frames if sum(1 for p in f.step.people if p.track_id and p.face) > 1)
        seen = "; ".join(f"{t} {format_spans(s['face_spans_s'])} ({s['face_steps']} steps)" for t, s in faces.items())
        how = "; ".join(f"{_annotation_text(m.person)} with {track_label(m.track)}, {m.rule}" for m in matches)
        left = sorted(set(faces) - compared)
        warnings.append(f"more than one person was in view ({len(faces)} face tracks: {seen}"
                        + (f"; {at_once * PERIOD:.2f} s with several at once" if at_once else "; one at a time")
                        + f"); compared {how}" + (f"; not compared: {', '.join(left)}" if left else "")
                        + ("" if chosen else "; name people in a person column or choose with --person TRACK"))
    for m in matches:
        gold = annotations.series[m.person]
        annotated = int(np.sum(np.isfinite(gold["valence"]) | np.isfinite(gold["arousal"])))
        n = max(len(v[0]) for v in out[m.person][1].values())
        if annotated and n < annotated / 2:
            warnings.append(f"{person_label(m.person)}: {n} of {annotated} annotated steps compared (track "
                            f"{track_label(m.track)} was seen {format_spans(stats[m.track]['spans_s'])}; the "
                            f"annotation covers {gold['time'].min():.2f}-{gold['time'].max():.2f} s)")
    return out, warnings


def evaluate(results: list, annotations_for, person=None) -> dict:
    """metrics.json content: per session (and per person) and pooled over all sessions; each score says
    which track it compared over which time spans; "warnings" lists what a reader must know.
    `annotations_for(result)` gives the session's Annotations (or None: not scored); `person`: the
    --person options (one session only)."""
    chosen = parse_person_options(person)
    if chosen and len(results) > 1:
        raise AnnotationError("--person applies to one bag (track ids are per session)")
    sessions, pooled, all_warnings = {}, {"valence": ([], []), "arousal": ([], [])}, []
    pooled_from = []
    for r in results:
        ann = annotations_for(r)
        stats = track_summary(r)
        entry = {"bag": r.bag, "complete": r.complete, "inputs": r.inputs, "rejected": r.counts,
                 "affect_messages": len(r.frames), "tracks": {track_label(t): v for t, v in stats.items()},
                 "modes": sorted({f.mode for f in r.frames}), "model_ids": sorted({f.model_id for f in r.frames}),
                 "warnings": []}
        if ann is not None:
            entry["annotations"] = ann.source
            pairs, entry["warnings"] = session_pairs(r, ann, chosen)
            entry["per_person"], compared = {}, []
            for person, (m, v) in pairs.items():
                label = person_label(person)
                sc, why = scores(v, f"{label} vs {track_label(m.track)}: ")
                entry["warnings"] += why
                times = np.unique(np.concatenate([v[d][2] for d in v]))
                used = {"person": label, "track": track_label(m.track), "rule": m.rule, "spans_s": spans(times)}
                entry["per_person"][label] = {**used, **sc}
                compared.append(used)
            if not pairs:
                raise AnnotationError(f"{ann.source}: no annotated person could be matched to a track of {r.bag}")
            merged = {d: tuple(np.concatenate([v[d][k] for _, v in pairs.values()]) for k in range(3))
                      for d in ("valence", "arousal")}
            sc, why = scores(merged, "session (all compared people): ") if len(pairs) > 1 else \
                (next(iter(entry["per_person"].values()), None), [])
            entry["metrics"] = {"valence": sc["valence"], "arousal": sc["arousal"], "compared": compared} if sc else \
                {"compared": compared}
            entry["warnings"] += why
            entry["scored"] = any(entry["metrics"].get(d, {}).get("ccc") is not None for d in ("valence", "arousal"))
            for d in pooled:
                pooled[d][0].append(merged[d][0])
                pooled[d][1].append(merged[d][1])
            pooled_from += [{"session": r.bag, **c} for c in compared]
        sessions[r.bag] = entry
        all_warnings += [f"{r.bag}: {w}" for w in entry["warnings"]]
    out = {"sessions": sessions, "grid_period_s": PERIOD, "warnings": all_warnings,
           "scored": any(e.get("scored") for e in sessions.values())}
    if pooled["valence"][0]:
        out["pooled"], why = pooled_scores({d: (np.concatenate(p), np.concatenate(g)) for d, (p, g) in pooled.items()},
                                           pooled_from)
        if len(results) > 1:
            out["warnings"] += why
    return out


def pooled_scores(paired: dict, compared: list) -> tuple[dict, list]:
    """metrics.json's "pooled": the scores over every compared step of every session (dim ->
    (prediction, gold), concatenated in session order), what they pooled, and their warnings. The merge
    of shards (eval/shards.py) calls this too, on the steps their compared.csv holds."""
    sc, why = scores(paired, "pooled: ")
    return {**sc, "compared": compared}, why
