"""Bag evaluation: the runtime pipelines over every message of a bag (offline, deterministic, as fast
as the CPU allows), or the AffectArray a live run recorded; predictions put on the 25 Hz annotation
grid by header stamp; CCC, PCC and RMSE per session, per person (where annotations name people that
are track ids) and pooled over sessions."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import conversions
from ..core.metrics import ccc, pcc, rmse
from ..runtime.offline import AUDIO, AUDIO_INFO, COMPRESSED_IMAGE, IMAGE, OfflinePerception
from ..recordings.annotations import Annotations, AnnotationError
from .bags import BagError, read_messages
from .from_media import ANNOTATION_MODE

PERIOD = 0.04             # RECOLA's annotation rate: 25 Hz
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
        for topic, msgtype, _, msg in read_messages(bag):
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
            yield kind, msg
    except BagError as err:
        result.complete = False
        result.problems.append(("bag", str(err)))
    if gold:
        result.annotations = Annotations(f"{bag} (/annotations)", {
            person: {"time": np.array([r[0] for r in rows]), "valence": np.array([r[1] for r in rows]),
                     "arousal": np.array([r[2] for r in rows])} for person, rows in gold.items()})


def run_offline(bag, configs: dict, progress: bool = False) -> SessionResult:
    """The runtime pipelines over the bag's camera and microphone messages."""
    result = SessionResult(str(bag), [], float("nan"))
    perception = OfflinePerception(configs)
    messages = _sensor_messages(bag, result)
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
def prediction_series(result: SessionResult) -> dict:
    """track id -> {"time" (relative, on the grid), "valence", "arousal"}; "" = voice only."""
    series = {}
    for f in result.frames:
        t = round((f.step.time - result.start) / PERIOD) * PERIOD
        for p in f.step.people:
            s = series.setdefault(p.track_id, {"time": [], "valence": [], "arousal": []})
            s["time"].append(t)
            s["valence"].append(p.valence)
            s["arousal"].append(p.arousal)
    return {k: {n: np.asarray(v, np.float64) for n, v in s.items()} for k, s in series.items()}


def primary_series(result: SessionResult) -> dict:
    """At every step the person closest to the camera (largest face box; the voice-only estimate when
    no face is seen): what an unnamed annotation of 'the person in front of the robot' is compared to."""
    t, v, a = [], [], []
    for f in result.frames:
        faces = [p for p in f.step.people if p.face and p.box is not None]
        pick = max(faces, key=lambda p: p.box[2] * p.box[3]) if faces else \
            next((p for p in f.step.people if not p.track_id), None)
        if pick is not None:
            t.append(round((f.step.time - result.start) / PERIOD) * PERIOD)
            v.append(pick.valence)
            a.append(pick.arousal)
    return {"time": np.asarray(t, np.float64), "valence": np.asarray(v, np.float64), "arousal": np.asarray(a, np.float64)}


def main_track(series: dict) -> str | None:
    """The track seen longest with a face; the voice-only series if there is no face at all."""
    faces = {k: len(v["time"]) for k, v in series.items() if k}
    if faces:
        return max(faces, key=faces.get)
    return "" if "" in series else None


def pair(pred: dict, gold: dict) -> dict:
    """Prediction and gold at the same grid times (gold within half a period), finite values only."""
    idx = np.round(gold["time"] / PERIOD).astype(np.int64)
    pos = {int(i): j for j, i in enumerate(np.round(pred["time"] / PERIOD).astype(np.int64))}
    out = {}
    for dim in ("valence", "arousal"):
        rows = [(pred[dim][pos[int(i)]], gold[dim][j]) for j, i in enumerate(idx)
                if int(i) in pos and abs(gold["time"][j] - i * PERIOD) <= PERIOD / 2 and np.isfinite(gold[dim][j])
                and np.isfinite(pred[dim][pos[int(i)]])]
        out[dim] = (np.array([r[0] for r in rows]), np.array([r[1] for r in rows]))
    return out


def scores(paired: dict) -> dict:
    out = {}
    for dim, (p, g) in paired.items():
        out[dim] = {"ccc": ccc(p, g), "pcc": pcc(p, g), "rmse": rmse(p, g), "n": int(len(p))} if len(p) >= 2 else \
            {"ccc": None, "pcc": None, "rmse": None, "n": int(len(p))}
    return out


def session_pairs(result: SessionResult, annotations: Annotations) -> dict:
    """'person' -> paired arrays: annotated people that are track ids, else the (single) annotated
    series vs the primary person (primary_series). AnnotationError when they do not overlap."""
    series = prediction_series(result)
    if not series:
        raise AnnotationError(f"{result.bag}: no predictions to compare (no face and no voice found)")
    lo, hi = annotations.span()
    t_hi = max(s["time"].max() for s in series.values())
    if hi < -PERIOD or lo > t_hi + PERIOD:
        raise AnnotationError(f"{annotations.source}: annotations cover {lo:.2f}..{hi:.2f} s but the recording "
                              f"covers 0..{t_hi:.2f} s from its first message: a different time base (times must be "
                              "seconds from the start of the recording)")
    out = {}
    for person, gold in annotations.series.items():
        if person and person in series:     # "" (unnamed) is not the voice-only series: it is the primary person
            out[person] = pair(series[person], gold)
        elif len(annotations.series) == 1:
            out[person or "primary"] = pair(primary_series(result), gold)
    if not out:
        raise AnnotationError(f"{annotations.source}: annotated people {sorted(annotations.series)} are none of the "
                              f"track ids {sorted(series)}; name them by track id, or annotate one person")
    return out


def evaluate(results: list, annotations_for) -> dict:
    """metrics.json content: per session (and per person) and pooled over all sessions.
    `annotations_for(result)` gives the session's Annotations (or None: not scored)."""
    sessions, pooled = {}, {"valence": ([], []), "arousal": ([], [])}
    for r in results:
        ann = annotations_for(r)
        entry = {"bag": r.bag, "complete": r.complete, "inputs": r.inputs, "rejected": r.counts,
                 "affect_messages": len(r.frames), "tracks": sorted(prediction_series(r))}
        if ann is not None:
            pairs = session_pairs(r, ann)
            entry["per_person"] = {p: scores(v) for p, v in pairs.items()}
            merged = {d: (np.concatenate([v[d][0] for v in pairs.values()]),
                          np.concatenate([v[d][1] for v in pairs.values()])) for d in ("valence", "arousal")}
            entry["metrics"] = scores(merged)
            for d in pooled:
                pooled[d][0].append(merged[d][0])
                pooled[d][1].append(merged[d][1])
        sessions[r.bag] = entry
    out = {"sessions": sessions, "grid_period_s": PERIOD}
    if pooled["valence"][0]:
        out["pooled"] = scores({d: (np.concatenate(p), np.concatenate(g)) for d, (p, g) in pooled.items()})
    return out
