"""The `rosbags` typestore that knows our messages: the bag tools (eval/) and the session logger
(a node) write and read bags with it, without ROS."""
from __future__ import annotations

import pathlib

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


