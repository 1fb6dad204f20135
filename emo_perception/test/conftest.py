"""Test environment: DDS kept on this machine, one ROS domain per test process."""
import os
import pathlib

_PKG_DIR = pathlib.Path(__file__).resolve().parents[1]

# Set before anything imports rclpy. setdefault: a caller's explicit choice wins, but the
# discovery range is forced, because the default would multicast off the machine.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(_PKG_DIR / "config" / "fastdds_profile.xml"))
# Each pytest process gets its own domain (child processes it starts inherit it on purpose).
os.environ["ROS_DOMAIN_ID"] = str(os.getpid() % 90 + 10)

# rclpy imports lark on the first publisher/subscription; lark imports the deprecated sre_parse and
# sre_constants modules. Import it once here with that warning silenced, so `-W error` still
# turns every other warning into an error.
import warnings  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import lark  # noqa: E402,F401
