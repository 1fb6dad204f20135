"""End-to-end latency and CPU use of the nodes as three processes or in one (ONNX Runtime backend),
in the configurations robots run: camera only (no microphone at all) and camera + microphone, at
several frame sizes, with today's working tree ('after') and the package of an earlier commit ('before',
`--before-rev`, its own YAML and models), side by side in one run (the machine is shared: compare within
a run).

A camera (bgr8 at 30 Hz with real faces) and, where the variant has one, a microphone (16 kHz real speech
in 1024-sample chunks, stamped with the capture time of their first sample like audio_capture) are
published from this process to freshly started nodes. Per variant:
- first_estimate_ms: the first AffectArray with a face, after the first camera frame was published;
- latency = receive time - AffectArray stamp, for steps with a face, split into the first second of data
  (start-up) and the steady state after it (up to the last processed frame: later steps wait for the
  stopped camera to be declared gone);
- where it goes: the face node's output latency, processing time and stamp spacing, the audio node's output
  latency, and the steady steps over 150 ms;
- the share of steps with a face and with a voice, the output rate, CPU (% of one core) and RSS per process.
'before' runs the package of `--before-rev` (git archive), 'after' the working tree.

    python bench/bench_end_to_end.py [--seconds 10] [--sizes 640x480,1280x720,1920x1080] [--faces 2]
        [--layouts three,one] [--audio off,on] [--rules before,after]
        [--profiles default,bench/profiles/face_30hz_detect_every_3.yaml] [--out bench/results/end_to_end.json]
`--profiles`: params files laid over the defaults for 'after' (a name in the package's config/ or a path);
'default' is the defaults alone.
"""
import argparse
import io
import itertools
import json
import math
import os
import pathlib
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

import numpy as np
import rclpy
from emo_perception_msgs.msg import Affect, AffectArray, AudioEmbedding, FaceEmbeddingArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from emo_perception import conversions
from emo_perception.recordings.sample_media import background, demo_frame, face_sources, load_speech, place_face
from emo_perception.nodes.media_sources import MicrophoneSource

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "emo_perception"
TICKS = os.sysconf("SC_CLK_TCK")
BEFORE_REV = "4e7d37d"   # before issue 21's face-node/fusion latency work (detect_every, on-arrival, face_interval)
FIRST_SECOND = 1.0       # s of data time counted as start-up


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


def before_tree(rev: str) -> pathlib.Path:
    """The package as it was at `rev` (git archive: every file of that commit, its YAML and models), where
    'before' nodes run from; today's interface packages (emo_perception_msgs) serve both."""
    out = pathlib.Path(tempfile.mkdtemp(prefix="e2e_before_"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "emo_perception"], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(out, filter="data")
    return out / "emo_perception"


def _profile_path(name: str) -> str:
    path = pathlib.Path(name)
    path = path if path.is_file() else PKG / "config" / name
    if not path.is_file():
        raise SystemExit(f"--profiles: no params file '{name}' (neither a path nor in {PKG / 'config'})")
    return str(path.resolve())


def _t(stamp):
    return stamp.sec + stamp.nanosec * 1e-9


def _pct(x, q):
    return round(float(np.percentile(x, q)), 1) if len(x) else None


def run_variant(size, faces, layout, audio, rule, seconds, code_dir, domain, encoding="bgr8", processing_rate=None,
                audio_delay=None, detect_every=None, profile=None, camera_where="bench"):
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(PKG / "config/fastdds_profile.xml"))
    logs = tempfile.mkdtemp()
    face = ([f"processing_rate:={processing_rate}"] if processing_rate else []) + \
        ([f"detect_every:={detect_every}"] if detect_every else [])
    fusion = [f"audio_delay:={audio_delay}"] if audio_delay is not None else []
    one = [x for p in face for x in ("-p", f"face_embedding_node:{p}")] + \
        [x for p in fusion for x in ("-p", f"fusion_node:{p}")]
    nodes = [("all_in_one", one)] if layout == "one" else [
        ("face_embedding_node", [x for p in face for x in ("-p", p)]),
        ("audio_embedding_node", []), ("fusion_node", [x for p in fusion for x in ("-p", p)])]
    params = pathlib.Path(code_dir) / "config" / "emo_perception.yaml"    # the defaults of that code
    files = ["--params-file", str(params)] + (["--params-file", str(profile)] if profile else [])
    procs = {name: subprocess.Popen([sys.executable, "-m", f"emo_perception.nodes.{name}", "--ros-args",
                                     *files, *extra], cwd=code_dir, env=env,
                                    stdout=open(f"{logs}/{name}.log", "w"), stderr=subprocess.STDOUT)
             for name, extra in nodes}
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    node = rclpy.create_node("bench_e2e", context=ctx)
    arrivals = []
    node.create_subscription(AffectArray, "affect", lambda m: arrivals.append((time.time(), m)), 100)
    face_arrivals = []    # where the latency goes: the face node's output, and its own processing time
    node.create_subscription(FaceEmbeddingArray, "faces/embeddings",
                             lambda m: face_arrivals.append((time.time(), _t(m.header.stamp), m.processing_time)), 100)
    audio_arrivals = []   # and the audio node's: receive time - the embedding's stamp
    node.create_subscription(AudioEmbedding, "audio/embeddings",
                             lambda m: audio_arrivals.append((time.time(), _t(m.header.stamp))), 100)
    img_pub = node.create_publisher(Image, "image", qos_profile_sensor_data)
    img = conversions.rgb_to_image(camera_frame(size, faces), encoding)
    img.header.frame_id = "camera"
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    spinning = True

    def spin():
        while spinning and ctx.ok():
            executor.spin_once(timeout_sec=0.05)
    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    deadline = time.monotonic() + 90
    ready = lambda: img_pub.get_subscription_count() > 0 and node.count_publishers("affect") > 0  # noqa: E731
    if audio:
        ready_audio = lambda: node.count_subscribers("audio_stamped") > 0   # noqa: E731
    else:
        ready_audio = lambda: True   # noqa: E731
    while not (ready() and ready_audio()) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)   # the nodes' other subscriptions are matched too
    # the microphone starts with the camera: here, or when the driver process says its first frame is out
    mic = MicrophoneSource(node, load_speech()) if audio and camera_where != "process" else None
    first_frame = []
    stop = time.monotonic() + seconds

    def camera():
        period, t_next = 1 / 30, time.monotonic()
        while time.monotonic() < stop:
            img.header.stamp = node.get_clock().now().to_msg()
            img_pub.publish(img)
            if not first_frame:
                first_frame.append((time.time(), _t(img.header.stamp)))
            t_next += period
            time.sleep(max(0.0, t_next - time.monotonic()))
    cpu0 = {n: cpu_seconds(p.pid) for n, p in procs.items()}
    rss0 = {n: rss_mb(p.pid) for n, p in procs.items()}
    t0 = time.monotonic()
    if camera_where == "process":   # a driver of its own (camera_process.py): this process only listens
        cam_proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "camera_process.py"), "--size", size,
                                     "--faces", str(faces), "--encoding", encoding, "--seconds", str(seconds)],
                                    cwd=ROOT / "bench", env=env, stdout=subprocess.PIPE, text=True)
        started = cam_proc.stdout.readline()   # at its first frame
        cpu0 = {n: cpu_seconds(p.pid) for n, p in procs.items()}   # the nodes' work from the first frame on
        if audio:
            mic = MicrophoneSource(node, load_speech())
        told = json.loads(started or "{}")
        cam_proc.communicate(timeout=seconds + 60)
        if told.get("first_frame_wall") is not None:
            first_frame.append((told["first_frame_wall"], told["first_frame_stamp"]))
    else:
        cam = threading.Thread(target=camera, daemon=True)
        cam.start()
        cam.join()
    time.sleep(0.5)   # the last steps
    wall = time.monotonic() - t0
    if camera_where == "process" and first_frame:   # the driver's own start-up is not the nodes' work time
        wall = time.time() - first_frame[0][0]
    cpu = {n: round(100 * (cpu_seconds(p.pid) - cpu0[n]) / wall, 1) for n, p in procs.items()}
    rss = {n: [round(rss0[n], 1), round(rss_mb(p.pid), 1)] for n, p in procs.items()}
    if mic is not None:
        mic.timer.cancel()
    spinning = False
    spinner.join(timeout=5)
    node.destroy_node()
    rclpy.try_shutdown(context=ctx)
    for p in procs.values():
        p.terminate()
    for p in procs.values():
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()

    got = list(arrivals)
    out = {"size": size, "faces": faces, "layout": layout, "audio": audio, "rule": rule, "seconds": seconds,
           "audio_delay": audio_delay, "detect_every": detect_every,
           "profile": pathlib.Path(profile).name if profile else "default", "camera": camera_where,
           "cpu_percent_of_one_core": cpu, "rss_mb_start_end": rss, "affect_messages": len(got)}
    if not got or not first_frame:
        return {**out, "error": "no AffectArray"}
    frame_wall, frame_stamp = first_frame[0]
    with_face = [(recv, m) for recv, m in got if any(p.modalities & Affect.MODALITY_FACE for p in m.people)]
    lat = np.array([(recv - _t(m.header.stamp)) * 1000 for recv, m in with_face])
    early = np.array([_t(m.header.stamp) < frame_stamp + FIRST_SECOND for _, m in with_face], bool)
    # steps after the camera's last processed frame wait for the face stream to be declared gone (the
    # microphone runs on a little): the end of the run, not the steady state
    last_face = max((stamp for _, stamp, _ in face_arrivals), default=math.inf)
    ended = np.array([_t(m.header.stamp) > last_face for _, m in with_face], bool)
    lat, early = lat[~ended], early[~ended]
    with_face = [x for x, e in zip(with_face, ended) if not e]
    data_times = np.array([_t(m.header.stamp) for _, m in got])
    steady = [m for _, m in got if _t(m.header.stamp) >= frame_stamp + FIRST_SECOND]
    audio_lat = np.array([(recv - stamp) * 1000 for recv, stamp in audio_arrivals
                          if stamp >= frame_stamp + FIRST_SECOND])
    face_stamps = np.array([stamp for _, stamp, _ in face_arrivals if stamp >= frame_stamp + FIRST_SECOND])
    faces_steady = np.array([((recv - stamp) * 1000, took * 1000) for recv, stamp, took in face_arrivals
                             if stamp >= frame_stamp + FIRST_SECOND]).reshape(-1, 2)
    return {**out,
            "first_estimate_ms": round((with_face[0][0] - frame_wall) * 1000, 1) if with_face else None,
            "latency_first_second_ms": {"p50": _pct(lat[early], 50), "p95": _pct(lat[early], 95)},
            "latency_steady_ms": {"p50": _pct(lat[~early], 50), "p95": _pct(lat[~early], 95),
                                  "max": round(float(lat[~early].max()), 1) if (~early).any() else None},
            # the face node's part of the steady latency: its output's receive time - the frame's stamp, and
            # the processing time it reports (the rest of its part is transport and waiting in its queue)
            "faces_steady_ms": {"latency_p50": _pct(faces_steady[:, 0], 50),
                                "latency_p95": _pct(faces_steady[:, 0], 95),
                                "processing_p50": _pct(faces_steady[:, 1], 50),
                                "processing_p95": _pct(faces_steady[:, 1], 95),
                                # the processed frames' stamp spacing: a step between two frames waits for the
                                # second unless it is within the fusion's face_interval of the first
                                "spacing_p50": _pct(np.diff(face_stamps) * 1000, 50),
                                "spacing_p95": _pct(np.diff(face_stamps) * 1000, 95)},
            "audio_steady_ms": {"latency_p50": _pct(audio_lat, 50), "latency_p95": _pct(audio_lat, 95)},
            # steady steps more than 150 ms late: (s of data time after the first frame, latency ms)
            "steady_slow_steps": [(round(_t(m.header.stamp) - frame_stamp, 3), round(float(x), 1))
                                  for (_, m), x, e in zip(with_face, lat, early) if not e and x > 150],
            "affect_rate_data_hz": round((len(got) - 1) / max(data_times[-1] - data_times[0], 1e-9), 2),
            "steady_share_with_face": round(float(np.mean([any(p.modalities & Affect.MODALITY_FACE
                                                               for p in m.people) for m in steady])), 3)
            if steady else None,
            "steady_share_with_voice": round(float(np.mean([any(p.modalities & Affect.MODALITY_VOICE
                                                                for p in m.people) for m in steady])), 3)
            if steady else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="per variant, from the first frame")
    ap.add_argument("--sizes", default="640x480,1280x720,1920x1080")
    ap.add_argument("--faces", type=int, default=2)
    ap.add_argument("--encoding", default="bgr8")
    ap.add_argument("--layouts", default="three,one", help="three: three node processes; one: emo_perception_all")
    ap.add_argument("--audio", default="off,on", help="off: camera only (no microphone at all); on: + microphone")
    ap.add_argument("--rules", default="before,after", help="before: package at --before-rev; after: working tree")
    ap.add_argument("--before-rev", default=BEFORE_REV)
    ap.add_argument("--processing-rate", type=float, help="face node processing_rate (default: the YAML's)")
    ap.add_argument("--audio-delays", default="", help="fusion audio_delay values to compare, e.g. 0,0.084 "
                                                         "(with the microphone; default: the YAML's)")
    ap.add_argument("--detect-every", type=int, help="face node detect_every (default: the YAML's)")
    ap.add_argument("--profiles", default="default", help="params files over the defaults, for 'after' "
                                                          "(e.g. default,bench/profiles/face_30hz_detect_every_3.yaml)")
    ap.add_argument("--cameras", default="bench", help="where the camera publishes from: 'bench' (a thread of this "
                                                        "process, which also receives) or 'process' (a driver "
                                                        "process of its own, as on a robot); e.g. bench,process")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "end_to_end.json"))
    a = ap.parse_args()
    profiles = [None if p == "default" else _profile_path(p) for p in a.profiles.split(",")]
    rules = a.rules.split(",")
    code = {"after": PKG}
    if "before" in rules:
        code["before"] = before_tree(a.before_rev)
    results = []
    domain = os.getpid() % 80 + 10
    # the rules alternate innermost, so that load changes on the shared machine hit both alike
    delays = [float(d) for d in a.audio_delays.split(",")] if a.audio_delays else [None]
    for size, layout, audio, rule, delay, camera_where, profile in itertools.product(
            a.sizes.split(","), a.layouts.split(","), [x == "on" for x in a.audio.split(",")], rules, delays,
            a.cameras.split(","), profiles):
        if delay is not None and not audio and delay != delays[0]:
            continue    # camera only: the audio delay changes nothing
        if rule == "before" and profile is not None:
            continue    # profiles are today's files
        r = run_variant(size, a.faces, layout, audio, rule, a.seconds, code[rule], domain, a.encoding,
                        a.processing_rate, delay, a.detect_every, profile, camera_where)
        domain = domain % 80 + 11      # a fresh domain: nothing of the last variant lingers
        results.append(r)
        print(json.dumps({k: r.get(k) for k in ("size", "layout", "audio", "audio_delay", "rule", "profile", "camera",
                                                "first_estimate_ms",
                                                "latency_first_second_ms", "latency_steady_ms", "faces_steady_ms",
                                                "audio_steady_ms",
                                                "steady_share_with_face", "cpu_percent_of_one_core")}),
              flush=True)
    out = {"bench": "end_to_end", "camera": f"{a.encoding} 30 Hz, {a.faces} real face(s)",
           "audio": "16 kHz S16LE 1024-sample chunks stamped at their first sample", "backend": "onnxruntime",
           "face_processing_rate": a.processing_rate or "YAML default", "before_rev": a.before_rev,
           "face_detect_every": a.detect_every or "YAML default",
           "latency": "receive time - AffectArray stamp, steps with a face; steady: after the first second of data",
           "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end",
           "variants": results}
    pathlib.Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
