"""End-to-end latency and CPU use of the nodes as three processes or in one (ONNX Runtime backend).

A camera (640x480 rgb8 by default, or e.g. 1280x720 bgr8, at 30 Hz with one to three real faces) and a
microphone (16 kHz real speech in 1024-sample chunks, stamped with the capture time of their first sample
like audio_capture) are published from this process. Latency of an AffectArray = its arrival time - the
stamp of the image frame that fed it (the frame nearest its grid time). Prints JSON; targets: p95 <= 100
ms, 25 Hz output, no growing queues.

    python bench/bench_end_to_end.py [--seconds 60] [--size 1280x720 --encoding bgr8 --faces 2] [--one-process]
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import rclpy
from emo_perception_msgs.msg import AffectArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from emo_perception import conversions
from emo_perception.recordings.sample_media import background, demo_frame, face_sources, load_speech, place_face
from emo_perception.nodes.media_sources import MicrophoneSource

ROOT = pathlib.Path(__file__).resolve().parents[1]
PARAMS = ROOT / "emo_perception" / "config" / "emo_perception.yaml"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def camera_frame(size: str, faces: int):
    if size == "640x480" and faces == 1:
        return demo_frame()
    w, h = (int(v) for v in size.split("x"))
    frame = background(w, h)
    for i in range(faces):   # real faces side by side at ~1.5 m (face height 0.15 of the frame)
        place_face(frame, face_sources()[0], (w * (i + 1) / (faces + 1), h * 0.45), h * 0.15, (-8, 6, 12)[i % 3])
    return frame


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--processing-rate", type=float, help="face node processing_rate (default: the YAML's)")
    ap.add_argument("--size", default="640x480", help="camera frame WxH (640x480: the demo frame)")
    ap.add_argument("--encoding", default="rgb8")
    ap.add_argument("--faces", type=int, default=1)
    ap.add_argument("--one-process", action="store_true", help="all three nodes in emo_perception_all")
    a = ap.parse_args()
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 90 + 10))
    os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(ROOT / "emo_perception/config/fastdds_profile.xml"))
    logs = tempfile.mkdtemp()
    procs = {}
    rate = ["-p", f"face_embedding_node:processing_rate:={a.processing_rate}"] if a.processing_rate else []
    nodes = [("all_in_one", rate)] if a.one_process else [
        ("face_embedding_node", ["-p", f"processing_rate:={a.processing_rate}"] if a.processing_rate else []),
        ("audio_embedding_node", []), ("fusion_node", [])]
    for name, extra in nodes:
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", f"emo_perception.nodes.{name}", "--ros-args", "--params-file", str(PARAMS), *extra],
            stdout=open(f"{logs}/{name}.log", "w"), stderr=subprocess.STDOUT)
    rclpy.init()
    node = rclpy.create_node("bench_e2e")
    arrivals = []
    node.create_subscription(AffectArray, "affect", lambda m: arrivals.append((time.time(), m)), 10)
    img_pub = node.create_publisher(Image, "image", qos_profile_sensor_data)
    img = conversions.rgb_to_image(camera_frame(a.size, a.faces), a.encoding)
    img.header.frame_id = "camera"
    image_stamps = []
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    def spin():
        try:
            executor.spin()
        except rclpy.executors.ExternalShutdownException:
            pass
    threading.Thread(target=spin, daemon=True).start()
    deadline = time.monotonic() + 60
    while img_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    MicrophoneSource(node, load_speech())

    def camera():
        period, t_next = 1 / 30, time.monotonic()
        end = time.monotonic() + a.seconds + 3
        while time.monotonic() < end:
            img.header.stamp = node.get_clock().now().to_msg()
            img_pub.publish(img)
            image_stamps.append(img.header.stamp.sec + img.header.stamp.nanosec * 1e-9)
            t_next += period
            time.sleep(max(0.0, t_next - time.monotonic()))
    cam = threading.Thread(target=camera, daemon=True)
    cam.start()
    time.sleep(3)  # warm-up: models loaded, discovery done, first steps out
    arrivals.clear()
    cpu0 = {n: cpu_seconds(p.pid) for n, p in procs.items()}
    rss0 = {n: rss_mb(p.pid) for n, p in procs.items()}
    t0 = time.monotonic()
    time.sleep(a.seconds)
    wall = time.monotonic() - t0
    cpu = {n: round(100 * (cpu_seconds(p.pid) - cpu0[n]) / wall, 1) for n, p in procs.items()}
    rss = {n: {"start_mb": round(rss0[n], 1), "end_mb": round(rss_mb(p.pid), 1)} for n, p in procs.items()}
    got = list(arrivals)
    cam.join()
    for p in procs.values():
        p.terminate()
    rclpy.try_shutdown()

    stamps = np.array(image_stamps)
    lat, t_recv, with_face = [], [], 0
    for recv, m in got:
        t = m.header.stamp.sec + m.header.stamp.nanosec * 1e-9
        if any(p.modalities & 1 for p in m.people):
            with_face += 1
            nearest = stamps[np.argmin(np.abs(stamps - t))]
            lat.append(recv - nearest)
            t_recv.append(recv)
    lat = np.array(lat) * 1000
    n = len(lat)
    first, last = lat[: n // 6], lat[-n // 6:]
    data_times = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in got])
    out = {
        "bench": "end_to_end_" + ("one_process" if a.one_process else "three_processes"), "seconds": round(wall, 1),
        "camera": f"{a.size} {a.encoding} 30 Hz, {a.faces} face(s)",
        "audio": "16 kHz S16LE 1024-sample chunks", "backend": "onnxruntime",
        "face_processing_rate": a.processing_rate or "YAML default",
        "affect_messages": len(got), "affect_rate_data_hz": round((len(got) - 1) / (data_times[-1] - data_times[0]), 2),
        "messages_with_face": with_face,
        "face_tracks_per_message_median": float(np.median([sum(1 for q in m.people if q.modalities & 1)
                                                           for _, m in got])),
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1), "p95": round(float(np.percentile(lat, 95)), 1),
                       "max": round(float(lat.max()), 1)},
        "latency_p50_first_vs_last_sixth_ms": [round(float(np.median(first)), 1), round(float(np.median(last)), 1)],
        "cpu_percent_of_one_core": cpu, "rss": rss,
        "target_p95_le_100ms": bool(np.percentile(lat, 95) <= 100),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
