"""rosbag2 files (sqlite3 or mcap) written and read with `rosbags`, no rosbag2 install needed.

Messages go in and out as CDR bytes: writers serialize rclpy messages with rclpy's own serializer,
players publish the bytes' rclpy messages unchanged, and offline readers decode them with the
`rosbags` typestore (which also knows our message definitions, registered from the .msg files).
"""
from __future__ import annotations

import pathlib

from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

STORE = Stores.ROS2_HUMBLE   # message definitions as of Humble: what every supported robot reads
# Our own and audio_common's definitions, found next to the sources or in the install's share dir.
_MSG_PACKAGES = ("emo_perception_msgs", "audio_common_msgs")


def _msg_dirs():
    root = pathlib.Path(__file__).resolve().parents[3]
    yield from (root / "emo_perception_msgs" / "msg", root / "test_interfaces" / "audio_common_msgs" / "msg")
    try:
        from ament_index_python.packages import get_package_share_directory
        for pkg in _MSG_PACKAGES:
            yield pathlib.Path(get_package_share_directory(pkg)) / "msg"
    except (ImportError, LookupError, ValueError):
        pass


def typestore():
    """The Humble typestore plus emo_perception_msgs and audio_common_msgs."""
    store = get_typestore(STORE)
    types = {}
    for d in _msg_dirs():
        if d.is_dir():
            for f in sorted(d.glob("*.msg")):
                types.update(get_types_from_msg(f.read_text(), f"{d.parent.name}/msg/{f.stem}"))
    store.register(types)
    return store


def write_bag(path, records, storage: str = "sqlite3"):
    """records: (topic, type name e.g. 'sensor_msgs/msg/Image', receive time ns, rclpy message)."""
    from rclpy.serialization import serialize_message

    store, connections = typestore(), {}
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=8, storage_plugin=plugin) as writer:
        for topic, msgtype, t_ns, msg in records:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(connections[topic], int(t_ns), serialize_message(msg))


def read_raw(path):
    """(topic, type name, receive time ns, CDR bytes) in recorded order."""
    with Reader(path) as reader:
        for conn, t_ns, raw in reader.messages():
            yield conn.topic, conn.msgtype, t_ns, raw
