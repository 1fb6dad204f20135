"""A study run by an operator without the `ros2` CLI: emo_mark_event marks events and says which
participant is which track, emo_watch prints the estimates and events, the live view lists every event
(also those marked through the service), and the session files read in pandas without NaN where a value
is known. A study bag replays with /clock into a logger on simulated time. All across processes."""
import io
import json
import math
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pandas as pd
import pytest
from emo_perception_msgs.msg import Affect, AffectArray
from rclpy.serialization import serialize_message
from std_msgs.msg import String

from emo_perception import conversions
from node_harness import Harness, NodeProcess

pytestmark = pytest.mark.ros


def _tool(name, *args, timeout=60):
    """Run emo_mark_event / emo_watch (their cli modules) to the end: (exit code, stdout, stderr)."""
    p = subprocess.run([sys.executable, "-m", f"emo_perception.cli.{name}", *args], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def _default_sigint():
    # a shell that starts the suite in the background (`make test &`) ignores SIGINT in its children, and an
    # ignored SIGINT is inherited: the tool would not see the test's Ctrl-C. An operator's terminal delivers it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_tool(name, *args):
    return subprocess.Popen([sys.executable, "-m", f"emo_perception.cli.{name}", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _affect(stamp_s, k):
    msg = AffectArray(mode="prior", model_id="prior")
    msg.header.stamp = conversions.seconds_to_stamp(stamp_s)
    msg.people = [Affect(track_id="f0", valence=0.5 * math.sin(k / 10), arousal=0.2, confidence=0.8, modalities=1),
                  Affect(track_id="", valence=0.0, arousal=0.4, confidence=0.3, modalities=2)]   # voice only
    return msg


def test_an_operator_marks_events_assigns_participants_and_watches_without_the_ros2_cli(tmp_path):
    ns, port = "/ops", _free_port()
    ros = ("--ros-args", "-r", f"__ns:={ns}")
    logger = NodeProcess("session_logger_node", "-r", f"__ns:={ns}", "-p", f"output_dir:={tmp_path}",
                         "-p", "session:=s1", "-p", "participant:=dyad07", "-p", "condition:=A",
                         "-p", "flush_period:=0.3")
    view = NodeProcess("live_view_node", "-r", f"__ns:={ns}", "-p", f"port:={port}", "-p", "refresh_period:=0.1")
    h = Harness()
    watcher, sending = None, threading.Event()
    try:
        from emo_perception.nodes.fusion_node import AFFECT_QOS
        pub = h.node.create_publisher(AffectArray, f"{ns}/affect", AFFECT_QOS)      # as the fusion node publishes
        events = h.node.create_publisher(String, f"{ns}/events", 10)
        h.wait_for(lambda: pub.get_subscription_count() >= 3 and events.get_subscription_count() >= 2
                   and "live view on" in view.log(), 60, "logger and live view")
        watcher = _start_tool("watch", "--period", "0.5", *ros)
        notes = []
        threading.Thread(target=lambda: notes.extend(iter(watcher.stderr.readline, "")), daemon=True).start()
        # emo_watch says when it is connected to every publisher of both topics (the test's and the
        # logger's, which republishes marked events): events sent before that could miss it
        h.wait_for(lambda: any(f"{ns}/events from 2 publisher(s)" in n for n in notes), 30,
                   "emo_watch connected to both events publishers")
        sent = []

        def send():             # 25 Hz of affect on the wall clock, as a live camera stamps it
            t0, k = time.time(), 0
            while not sending.is_set():
                pub.publish(_affect(t0 + k * 0.04, k))
                sent.append(round(t0 + k * 0.04, 6))
                k += 1
                time.sleep(max(0.0, t0 + k * 0.04 - time.time()))

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        time.sleep(1.0)
        events.publish(String(data="start"))                  # a marker on the topic
        time.sleep(0.5)
        rc, out, err = _tool("mark_event", "condition:B", *ros)
        assert rc == 0 and out.startswith("logged 'condition:B' at "), (out, err)
        stamp = out.split(" at ")[1].split()[0]
        rc, out, err = _tool("mark_event", "--participant", "P03", "--track", "f0", *ros)
        assert rc == 0 and "participant P03 is track f0" in out, (out, err)
        rc, out, err = _tool("mark_event", "--participant", "P04", "--track", "voice", *ros)
        assert rc == 0, err
        rc, out, err = _tool("mark_event", "participant:P05 f1", *ros)       # malformed: refused, one line
        assert rc == 1 and err.count("\n") == 1 and "expected 'participant:<participant>=<track>'" in err, err
        rc, out, err = _tool("mark_event", "lost", "--timeout", "1", "--ros-args", "-r", "__ns:=/nobody")
        assert rc == 1 and "no service /nobody/mark_event after 1 s: is emo_record running" in err, err
        url = f"http://127.0.0.1:{port}/state"
        h.wait_for(lambda: len(json.load(urllib.request.urlopen(url, timeout=5))["events"]) >= 4, 20, "the live view")
        state = json.load(urllib.request.urlopen(url, timeout=5))
        time.sleep(1.0)
        sending.set()
        sender.join(timeout=5)
        time.sleep(1.0)
        watcher.send_signal(signal.SIGINT)                  # Ctrl-C: the table so far, exit 0
        watched, _ = watcher.communicate(timeout=60)
        watch_err = "".join(notes)
        logger.stop()                                       # SIGTERM: the run's end goes into session.json
    finally:
        sending.set()
        if watcher is not None and watcher.poll() is None:
            watcher.kill()
            watcher.communicate()
        h.close()
        logger.stop()
        view.stop()
    # the live view lists every event: the topic's and the three marked through the service
    assert [e[1] for e in state["events"]] == ["start", "condition:B", "participant:P03=f0", "participant:P04=voice"]
    assert sorted(state["people"]) == ["f0", "voice"]
    assert state["people"]["f0"]["participant"] == "P03" and state["people"]["voice"]["participant"] == "P04"
    # emo_watch: a table of both people and the events, as they came
    assert watcher.returncode == 0, watch_err
    lines = watched.splitlines()
    assert lines[0].split() == ["stamp", "t", "track", "valence", "arousal", "confidence", "inputs", "mode"]
    rows = [ln.split() for ln in lines[1:] if not ln.startswith("--")]
    assert {r[2] for r in rows} == {"f0", "voice"} and len(rows) >= 2 * 8, watched     # >= 8 s, 2 rows a second
    assert {r[6] for r in rows if r[2] == "voice"} == {"voice"} and {r[7] for r in rows} == {"prior"}
    assert [ln for ln in lines if ln.startswith("-- event")] == [
        "-- event: start", "-- event: condition:B", "-- event: participant:P03=f0", "-- event: participant:P04=voice"]
    # the files, as pandas reads them
    folder = tmp_path / "s1"
    affect = pd.read_csv(folder / "affect.csv")
    assert not affect.isna().any().any(), affect[affect.isna().any(axis=1)]
    assert set(affect["track_id"]) == {"f0", "voice"} and len(affect) == 2 * len(sent)
    marks = pd.read_csv(folder / "events.csv", dtype={"stamp": str})
    assert list(marks["label"]) == ["start", "condition:B", "participant:P03=f0", "participant:P04=voice"]
    assert list(marks["source"]) == ["topic", "service", "service", "service"]       # the echo is not logged again
    assert marks["stamp"][1] == stamp                                                  # to the nanosecond
    people = pd.read_csv(folder / "participants.csv")
    assert dict(zip(people["track_id"], people["participant"])) == {"f0": "P03", "voice": "P04"}
    merged = affect.merge(people[["track_id", "participant"]], on="track_id", suffixes=("_session", ""))
    assert set(merged["participant_session"]) == {"dyad07"} and not merged.isna().any().any()
    meta = json.loads((folder / "session.json").read_text())
    run = meta["runs"][0]
    assert meta["participants"] == {"f0": "P03", "voice": "P04"}
    assert run["stopped"] >= run["started"] and run["rows_written"] == len(affect) and run["events_logged"] == 4
    assert [float(s) for s in run["affect_stamps"]] == pytest.approx([sent[0], sent[-1]], abs=1e-5)
    assert "Traceback" not in logger.log() + view.log()


def _study_bag(folder, t0=1000.0, seconds=8.0):
    """A study bag as emo_record writes it (affect and an event), its data time at t0 (a past session)."""
    from emo_perception.runtime.session_log import SessionLog

    log = SessionLog(folder, {"participant": "P01", "condition": "A", "notes": ""})
    log.open_bag("mcap")
    for k in range(int(seconds * 25)):
        t_ns = int(round((t0 + k * 0.04) * 1e9))
        cdr = serialize_message(_affect(t0 + k * 0.04, k))
        log.write_message("affect", "emo_perception_msgs/msg/AffectArray", t_ns, cdr)
        if k == 75:         # 3 s in
            log.write_message("events", "std_msgs/msg/String", t_ns, serialize_message(String(data="condition:B")))
    log.close()
    return log.bag_path()


def test_a_study_bag_replays_with_clock_into_a_logger_on_simulated_time(tmp_path):
    bag = _study_bag(tmp_path / "recorded")
    ns = "/replay"
    ros = ("--ros-args", "-r", f"__ns:={ns}")
    logger = NodeProcess("session_logger_node", "-r", f"__ns:={ns}", "-p", f"output_dir:={tmp_path}",
                         "-p", "session:=again", "-p", "use_sim_time:=true", "-p", "flush_period:=0.3")
    watcher = player = None
    try:
        h = Harness()
        try:
            h.wait_for(lambda: h.node.count_subscribers(f"{ns}/affect") >= 2, 60, "logger")
        finally:
            h.close()
        watcher = _start_tool("watch", "--period", "0", "--format", "csv", "--duration", "14", *ros)
        time.sleep(3.0)     # emo_watch subscribed (its start takes ~1-3 s)
        player = subprocess.Popen([sys.executable, "-m", "emo_perception.cli.bag", "play", str(bag), "--clock",
                                   "--remap", f"affect:={ns}/affect", f"events:={ns}/events",
                                   "--wait-for-subscribers", "30"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3.5)
        rc, out, err = _tool("mark_event", "stimulus_1", *ros)
        assert rc == 0, err
        stamp = float(out.split(" at ")[1].split()[0])
        _, played_err = player.communicate(timeout=60)
        assert player.returncode == 0, played_err
        watched, _ = watcher.communicate(timeout=60)
        logger.stop()
    finally:
        for p in (watcher, player):
            if p is not None and p.poll() is None:
                p.kill()
                p.communicate()
        logger.stop()
    assert 1000.0 < stamp < 1008.0, f"the event was stamped {stamp}: not on the bag's clock"
    watched = pd.read_csv(io.StringIO(watched), dtype={"stamp": str})
    assert set(watched["track"]) == {"f0", "voice"} and watched["stamp"].astype(float).between(1000, 1008).all()
    marks = pd.read_csv(tmp_path / "again" / "events.csv")
    assert sorted(marks["label"]) == ["condition:B", "stimulus_1"] and marks["stamp"].between(1000, 1008).all()
    assert "clock_mismatch" not in logger.log() and "Traceback" not in logger.log()
