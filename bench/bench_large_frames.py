"""Arrival of big camera frames at the face node (another process) under a Fast DDS profile.

For each frame size, a face_embedding_node process is started with the profile, and this process
publishes that many seconds of bgr8 frames (two real faces) at --rate Hz, best effort (sensor data
QoS), each stamped when published. After the last frame, the node's /diagnostics say how many
frames it got (frames_processed + frames_skipped), its input rate and the share of frames its
stamps show went missing before it. Prints JSON and adds it to --out under the profile's name.

    python bench/bench_large_frames.py [--profile FILE] [--sizes 1920x1080,3840x2160] [--seconds 10]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_end_to_end import PARAMS, ROOT, camera_frame, rss_mb  # noqa: E402

from emo_perception import conversions  # noqa: E402

SHIPPED = ROOT / "emo_perception" / "config" / "fastdds_profile.xml"


def _number(text):
    return None if text is None else float(text)


def node_values(diags: list) -> dict:
    for m in reversed(diags):
        for s in m.status:
            if s.name.endswith("face_embedding_node"):
                return {kv.key: kv.value for kv in s.values} | {"level": int.from_bytes(s.level, "little")
                                                                 if isinstance(s.level, bytes) else int(s.level),
                                                                 "message": s.message}
    return {}


def receive(count_file: str):
    """--receive: a bare subscriber in its own process that only counts frames (the transport alone,
    without the face node's work); writes the count to `count_file` twice a second."""
    rclpy.init()
    node = rclpy.create_node("bench_large_frames_counter")
    got = [0]
    node.create_subscription(Image, "image", lambda m: got.__setitem__(0, got[0] + 1), qos_profile_sensor_data)
    last = time.monotonic()
    try:
        while rclpy.ok():
            rclpy.spin_once(node, timeout_sec=0.1)
            if time.monotonic() - last > 0.5:
                pathlib.Path(count_file).write_text(str(got[0]))
                last = time.monotonic()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


def run_size(size: str, a, domain: int) -> dict:
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain),
               FASTDDS_DEFAULT_PROFILES_FILE=str(a.receiver_profile or a.profile))
    log = tempfile.NamedTemporaryFile("w", suffix=".log", prefix="large_frames_", delete=False)
    count_file = tempfile.NamedTemporaryFile(suffix=".count", delete=False).name
    receiver = ([sys.executable, __file__, "--receive", count_file] if a.receiver == "count" else
                [sys.executable, "-m", "emo_perception.nodes.face_embedding_node", "--ros-args",
                 "--params-file", str(PARAMS), "-p", "diagnostics_period:=0.5"])
    proc = subprocess.Popen(receiver, stdout=log, stderr=subprocess.STDOUT, env=env)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("bench_large_frames", context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    diags = []
    try:
        node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
        pub = node.create_publisher(Image, "image", qos_profile_sensor_data)
        executor.add_node(node)

        def spin():
            try:
                executor.spin()
            except ExternalShutdownException:
                pass
        threading.Thread(target=spin, daemon=True).start()
        deadline = time.monotonic() + 60
        while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        img = conversions.rgb_to_image(camera_frame(size, 2), a.encoding)
        img.header.frame_id = "camera"
        time.sleep(2)   # the node is configured and ticking
        sent, period = 0, 1.0 / a.rate
        t0 = t_next = time.monotonic()
        publish_s = []
        while time.monotonic() - t0 < a.seconds:
            img.header.stamp = node.get_clock().now().to_msg()
            t = time.perf_counter()
            pub.publish(img)
            publish_s.append(time.perf_counter() - t)
            sent += 1
            t_next += period
            time.sleep(max(0.0, t_next - time.monotonic()))
        wall = time.monotonic() - t0
        during = node_values(diags)     # the rates over the last 5 s of sending
        time.sleep(1.5)                 # the last frames processed, a fresh diagnostics out
        after = node_values(diags)
        if a.receiver == "count":
            got = int(pathlib.Path(count_file).read_text() or 0)
        else:
            got = int(after.get("frames_processed", 0)) + int(after.get("frames_skipped", 0))
        publish_s.sort()
        return {"size": size, "encoding": a.encoding, "receiver": a.receiver, "frame_mb": round(len(img.data) / 1e6, 1),
                "sent": sent, "sent_hz": round(sent / wall, 1), "arrived": got,
                "arrived_share": round(got / sent, 3) if sent else None,
                "input_rate_hz": _number(during.get("input_rate_hz")),
                "missing_before_node_percent": _number(during.get("missing_before_node_percent")),
                "diagnostics_message": during.get("message"),
                "publish_ms_p50": round(1000 * publish_s[len(publish_s) // 2], 1),
                "face_node_rss_mb": round(rss_mb(proc.pid), 1)}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default=str(SHIPPED), help="Fast DDS XML profile for both processes")
    ap.add_argument("--sizes", default="1920x1080,3840x2160")
    ap.add_argument("--encoding", default="bgr8")
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--domain", type=int, default=170 + os.getpid() % 25, help="away from the tests' 10-99")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "large_frames.json"))
    ap.add_argument("--receiver", choices=("face_node", "count"), default="face_node",
                    help="count: a bare counting subscriber instead of the face node (the transport alone)")
    ap.add_argument("--receiver-profile", help="another profile for the receiving process (default: --profile)")
    ap.add_argument("--receive", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.receive:
        return receive(a.receive)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    # this process reads the profile at its first participant: the same file as the node's
    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(a.profile)
    rows = [run_size(s, a, a.domain) for s in a.sizes.split(",")]
    out = {"bench": "large_frames", "profile": pathlib.Path(a.profile).name,
           "receiver_profile": pathlib.Path(a.receiver_profile or a.profile).name, "rate_hz": a.rate,
           "seconds": a.seconds, "cpus": os.cpu_count(), "rows": rows,
           "note": "shared 2-core machine, other agents' tests and a soak run at the same time"}
    text = json.dumps(out, indent=1)
    print(text)
    if a.out:
        path = pathlib.Path(a.out)
        results = json.loads(path.read_text()) if path.is_file() else {}
        results[f"{out['profile']} -> {out['receiver_profile']} {a.receiver}"] = out
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1))
        shutil.move(tmp, path)


if __name__ == "__main__":
    main()
