"""Soak: the three node processes for a long run (an hour by default), memory, rate and latency over time.

The camera and microphone of bench_end_to_end.py (1280x720 bgr8 at 30 Hz with two real faces, 16 kHz
real speech in 1024-sample chunks stamped like audio_capture) are published from this process. Every
--interval seconds it samples each node's VmRSS from /proc/<pid>/status and its CPU use, and, for the
AffectArray messages that arrived in the interval, the output rate and the latency percentiles (latency =
arrival time - stamp of the image frame nearest the message's stamp). The JSON is rewritten after every
interval (atomically), so a run cut short still has its data. The summary holds RSS at start and end
and the least-squares RSS slope per node, over the whole run and after the warm-up (the first
--warmup-minutes: allocator pools, caches and ONNX Runtime arenas settle there).

    python bench/bench_soak.py [--minutes 60] [--interval 30] [--out bench/results/soak.json]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import rclpy
from emo_perception_msgs.msg import AffectArray
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_end_to_end import PARAMS, ROOT, camera_frame, cpu_seconds, rss_mb  # noqa: E402

from emo_perception import conversions  # noqa: E402
from emo_perception.nodes.media_sources import MicrophoneSource  # noqa: E402
from emo_perception.recordings.sample_media import load_speech  # noqa: E402

NODES = ("face_embedding_node", "audio_embedding_node", "fusion_node")
CAMERA_HZ = 30.0
STAMP_KEEP_S = 10.0   # image stamps kept for the nearest-frame lookup (latency is well below this)


def stamp_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def slope_mb_per_min(samples: list[dict], node: str, after_min: float = 0.0) -> float | None:
    pts = [(s["t_min"], s["rss_mb"][node]) for s in samples if s["t_min"] >= after_min and node in s["rss_mb"]]
    if len(pts) < 3:
        return None
    t, r = np.array(pts).T
    return round(float(np.polyfit(t, r, 1)[0]), 4)


def summary(samples: list[dict], warmup_min: float) -> dict:
    if not samples:
        return {}
    first, last = samples[0], samples[-1]
    out = {"minutes": last["t_min"], "rss_mb": {}}
    for n in last["rss_mb"]:
        out["rss_mb"][n] = {"start": first["rss_mb"].get(n), "end": last["rss_mb"][n],
                            "slope_mb_per_min": slope_mb_per_min(samples, n),
                            f"slope_mb_per_min_after_{warmup_min:g}_min": slope_mb_per_min(samples, n, warmup_min)}
    rates = [s["affect_rate_hz"] for s in samples]
    p95 = [s["latency_ms"]["p95"] for s in samples if s["latency_ms"]]
    out["affect_rate_hz"] = {"min": min(rates), "median": float(np.median(rates)), "max": max(rates)}
    if p95:
        out["latency_p95_ms"] = {"min": min(p95), "median": float(np.median(p95)), "max": max(p95)}
    return out


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def write_atomic(path: pathlib.Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--interval", type=float, default=30.0, help="seconds between samples")
    ap.add_argument("--warmup-minutes", type=float, default=5.0, help="left out of the 'after warm-up' slope")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--encoding", default="bgr8")
    ap.add_argument("--faces", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "soak.json"))
    # Its own domain, away from the tests' (10-99) and the shell default (42): an hour on a shared
    # domain ends up fused with somebody else's test stream.
    ap.add_argument("--domain", type=int, default=200 + os.getpid() % 30)
    a = ap.parse_args()
    out_path = pathlib.Path(a.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_DOMAIN_ID"] = str(a.domain)
    os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(ROOT / "emo_perception/config/fastdds_profile.xml"))
    logs = tempfile.mkdtemp(prefix="emo_soak_")
    procs = {name: subprocess.Popen(
        [sys.executable, "-m", f"emo_perception.nodes.{name}", "--ros-args", "--params-file", str(PARAMS)],
        stdout=open(f"{logs}/{name}.log", "w"), stderr=subprocess.STDOUT) for name in NODES}
    result = {"bench": "soak_three_processes", "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "camera": f"{a.size} {a.encoding} {CAMERA_HZ:g} Hz, {a.faces} face(s)",
              "audio": "16 kHz S16LE 1024-sample chunks, real speech looped", "backend": "onnxruntime (YAML)",
              "interval_s": a.interval, "ros_domain_id": a.domain, "planned_minutes": a.minutes, "node_logs": logs,
              "pids": {n: p.pid for n, p in procs.items()},
              "note": "shared 2-core machine: other agents ran tests at the same time", "samples": []}
    lock = threading.Lock()
    arrivals: list[tuple[float, float, bool]] = []     # (arrival time, message stamp, has a face)
    image_stamps: list[float] = []
    stop = threading.Event()
    rclpy.init()
    signal.signal(signal.SIGTERM, _interrupted)   # after rclpy's own handlers: stop, write, end the nodes
    node = rclpy.create_node("bench_soak")
    executor = SingleThreadedExecutor()
    try:
        def on_affect(m):
            with lock:
                arrivals.append((time.time(), stamp_s(m.header.stamp), any(p.modalities & 1 for p in m.people)))
        node.create_subscription(AffectArray, "affect", on_affect, 10)
        img_pub = node.create_publisher(Image, "image", qos_profile_sensor_data)
        img = conversions.rgb_to_image(camera_frame(a.size, a.faces), a.encoding)
        img.header.frame_id = "camera"
        executor.add_node(node)

        def spin():
            try:
                executor.spin()
            except ExternalShutdownException:
                pass
        threading.Thread(target=spin, daemon=True).start()
        deadline = time.monotonic() + 60
        while img_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        MicrophoneSource(node, load_speech())

        def camera():
            period, t_next = 1 / CAMERA_HZ, time.monotonic()
            while not stop.is_set():
                img.header.stamp = node.get_clock().now().to_msg()
                img_pub.publish(img)
                with lock:
                    image_stamps.append(stamp_s(img.header.stamp))
                t_next += period
                time.sleep(max(0.0, t_next - time.monotonic()))
        cam = threading.Thread(target=camera, daemon=True)
        cam.start()
        time.sleep(5)  # warm-up: models loaded, discovery done, first steps out
        with lock:
            arrivals.clear()
        t0 = t_prev = time.monotonic()
        cpu_prev = {n: cpu_seconds(p.pid) for n, p in procs.items()}
        while time.monotonic() - t0 < a.minutes * 60:
            time.sleep(max(0.0, a.interval - (time.monotonic() - t_prev)))
            now = time.monotonic()
            dead = {n: p.returncode for n, p in procs.items() if p.poll() is not None}
            alive = {n: p for n, p in procs.items() if n not in dead}
            cpu_now = {n: cpu_seconds(p.pid) for n, p in alive.items()}
            with lock:
                got, arrivals[:] = list(arrivals), []
                stamps = np.array(image_stamps)
                cut = time.time() - STAMP_KEEP_S
                image_stamps[:] = [s for s in image_stamps if s >= cut]
            lat = []
            for recv, t, face in got:
                if face and len(stamps):
                    i = np.clip(np.searchsorted(stamps, t), 1, len(stamps) - 1)
                    nearest = stamps[i] if abs(stamps[i] - t) < abs(stamps[i - 1] - t) else stamps[i - 1]
                    lat.append((recv - nearest) * 1000)
            lat = np.array(lat)
            result["samples"].append({
                "t_min": round((now - t0) / 60, 2),
                "rss_mb": {n: round(rss_mb(p.pid), 2) for n, p in alive.items()},
                "cpu_percent_of_one_core": {n: round(100 * (cpu_now[n] - cpu_prev[n]) / (now - t_prev), 1)
                                            for n in alive},
                "affect_rate_hz": round(len(got) / (now - t_prev), 2),
                "messages_with_face": int(sum(1 for g in got if g[2])),
                "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1),
                               "p95": round(float(np.percentile(lat, 95)), 1),
                               "p99": round(float(np.percentile(lat, 99)), 1),
                               "max": round(float(lat.max()), 1)} if len(lat) else {},
            })
            cpu_prev, t_prev = cpu_now, now
            result["summary"] = summary(result["samples"], a.warmup_minutes)
            if dead:
                result["died"] = dead
            write_atomic(out_path, result)
            if dead:
                print(f"node(s) exited: {dead}; logs in {logs}", file=sys.stderr)
                break
        result["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        write_atomic(out_path, result)
        print(json.dumps(result["summary"], indent=1))
    except KeyboardInterrupt:
        result["interrupted_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        write_atomic(out_path, result)
    finally:
        stop.set()
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        executor.shutdown()
        rclpy.try_shutdown()
    return 1 if result.get("died") else 0


if __name__ == "__main__":
    sys.exit(main())
