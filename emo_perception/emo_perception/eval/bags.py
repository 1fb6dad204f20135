"""rosbag2 files (sqlite3 or mcap) written and read with `rosbags`, no rosbag2 install needed.

Messages go in and out as CDR bytes: writers serialize `rosbags` messages (or rclpy ones with rclpy's
own serializer), players publish the bytes' rclpy messages unchanged, and offline readers decode them
with the `rosbags` typestore (runtime/bag_types.py: it also knows our and audio_common's messages).
"""
from __future__ import annotations

import contextlib
import pathlib
import sqlite3

from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer

from ..runtime.bag_types import typestore

BAG_FILES = ("metadata.yaml", ".db3", ".mcap", ".db3-shm", ".db3-wal")   # what a rosbag2 folder holds


def bag_bytes(path: pathlib.Path) -> int:
    return sum(f.stat().st_size for f in pathlib.Path(path).rglob("*") if f.is_file())


def claim_output(path, overwrite: bool = False, check_only: bool = False):
    """Make room for a new bag at `path`: an existing one is an error naming --overwrite; with
    overwrite, only a folder that holds nothing but a bag's files is removed (not with check_only:
    a writer checks before its work and removes right before writing)."""
    import shutil

    path = pathlib.Path(path)
    if not path.exists():
        return
    if not overwrite:
        raise FileExistsError(f"output '{path}' exists already; choose another --out or pass --overwrite to replace it")
    others = [f.name for f in path.iterdir() if not (f.is_file() and f.name.endswith(BAG_FILES))] \
        if path.is_dir() else [path.name]
    if others:
        raise FileExistsError(f"output '{path}' exists and is not a bag folder "
                              f"(it holds {', '.join(sorted(others)[:5])}); "
                              "--overwrite replaces only a bag: choose another --out")
    if not check_only:
        shutil.rmtree(path)


def write_bag(path, records, storage: str = "sqlite3"):
    """records: (topic, type name e.g. 'sensor_msgs/msg/Image', receive time ns, message), the message
    a `rosbags` one (no ROS needed) or an rclpy one (serialized by rclpy)."""
    store, connections = typestore(), {}
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=8, storage_plugin=plugin) as writer:
        for topic, msgtype, t_ns, msg in records:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            if hasattr(msg, "__msgtype__"):
                data = store.serialize_cdr(msg, msgtype)
            else:
                from rclpy.serialization import serialize_message
                data = serialize_message(msg)
            writer.write(connections[topic], int(t_ns), data)


class BagError(ValueError):
    """A bag that cannot be read (missing, truncated, corrupt); the text names it and what is wrong."""


@contextlib.contextmanager
def open_bag(path):
    path = pathlib.Path(path)
    if not path.exists():
        raise BagError(f"bag '{path}' does not exist")
    try:
        with Reader(path) as reader:
            yield reader
    except (ReaderError, OSError, KeyError, ValueError, sqlite3.DatabaseError) as err:
        if isinstance(err, BagError):
            raise
        raise BagError(f"bag '{path}' cannot be read ({type(err).__name__}: {err}); is it a complete rosbag2 "
                       "folder (metadata.yaml + .db3/.mcap)?") from err


# What a privacy-mode bag may not hold: the camera's pixels and the microphone's samples.
RAW_MEDIA_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "audio_common_msgs/msg/AudioData",
                   "audio_common_msgs/msg/AudioDataStamped")


def strip_raw_media(path, out, storage: str = "sqlite3", overwrite: bool = False) -> dict:
    """Copy a bag without its raw images and audio (affect, embeddings, annotations, AudioInfo stay),
    CDR bytes unchanged; returns {topic: messages kept or 'removed'}."""
    if pathlib.Path(out).resolve() == pathlib.Path(path).resolve():
        raise FileExistsError(f"output '{out}' is the bag being stripped; choose another --out")
    claim_output(out, overwrite)
    store, connections, kept = typestore(), {}, {}
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(out, version=8, storage_plugin=plugin) as writer:
        for topic, msgtype, t_ns, raw in read_raw(path):
            if msgtype in RAW_MEDIA_TYPES:
                kept[topic] = "removed"
                continue
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(connections[topic], t_ns, raw)
            kept[topic] = kept.get(topic, 0) + 1
    return kept


def topic_types(path) -> dict:
    """{topic: type name} of a bag, from its metadata (no message is read)."""
    with open_bag(path) as reader:
        return {c.topic: c.msgtype for c in reader.connections}


def read_raw(path, topics=None):
    """(topic, type name, receive time ns, CDR bytes) in recorded order."""
    with open_bag(path) as reader:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        for conn, t_ns, raw in reader.messages(connections=conns):
            yield conn.topic, conn.msgtype, t_ns, raw


def read_messages(path, topics=None, types=None):
    """(topic, type name, receive time ns, `rosbags` message) in recorded order, of the `topics` and
    `types` given (None: all); a message that does not decode ends the reading with a BagError naming its
    topic and time (what came before is kept). Messages of other types are not decoded: a bag recorded
    with an older definition of a message the reader does not use (FaceEmbeddingArray before its
    blendshapes) still reads, because rosbags decodes with the current definitions."""
    store = typestore()
    for topic, msgtype, t_ns, raw in read_raw(path, topics):
        if types is not None and msgtype not in types:
            continue
        try:
            msg = store.deserialize_cdr(raw, msgtype)
        except Exception as err:  # noqa: BLE001 - rosbags raises assorted types for broken CDR
            raise BagError(f"bag '{path}': message on {topic} at {t_ns * 1e-9:.3f} s does not decode as "
                           f"{msgtype}: {err}") from err
        yield topic, msgtype, t_ns, msg


def bag_info(path) -> dict:
    """Topics with type, message count, first/last receive time, duration, rate and longest gap."""
    topics = {}
    for topic, msgtype, t_ns, _ in read_raw(path):
        t = t_ns * 1e-9
        s = topics.setdefault(topic, {"type": msgtype, "count": 0, "first_s": t, "last_s": t, "max_gap_s": 0.0})
        s["max_gap_s"] = max(s["max_gap_s"], t - s["last_s"])
        s["count"] += 1
        s["last_s"] = t
    for s in topics.values():
        s["duration_s"] = s["last_s"] - s["first_s"]
        s["rate_hz"] = (s["count"] - 1) / s["duration_s"] if s["duration_s"] > 0 else 0.0
        for k in ("first_s", "last_s", "duration_s", "rate_hz", "max_gap_s"):
            s[k] = round(s[k], 4)
    if not topics:
        raise BagError(f"bag '{path}' holds no messages")
    return {"bag": str(path), "topics": topics,
            "duration_s": round(max(s["last_s"] for s in topics.values())
                                - min(s["first_s"] for s in topics.values()), 4)}
