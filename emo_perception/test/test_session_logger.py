"""A scripted study run: the nodes, the session logger and event markers over a generated session;
the logger is restarted in the middle. The CSV has every 40 ms step of every person exactly once, the
events at the times they were marked; an unwritable folder and a full disk are clear errors."""
import csv
import json
import os
import time

import pytest
from emo_perception_msgs.msg import AffectArray
from emo_perception_msgs.srv import MarkEvent
from std_msgs.msg import String

from emo_perception import conversions
from emo_perception.core.speaker import track_name
from emo_perception.nodes.media_sources import CameraSource, MicrophoneSource
from media import demo_frame, speech_16k
from node_harness import Harness, NodeProcess, latest_status

pytestmark = pytest.mark.ros

NS = "/study"   # a namespace of its own: nodes from earlier tests can linger in the graph for a while


def _logger(tmp_path, *extra):
    return NodeProcess("session_logger_node", "-r", f"__ns:={NS}", "-p", f"output_dir:={tmp_path}", "-p", "session:=s1",
                       "-p", "participant:=P01", "-p", "condition:=A", "-p", "flush_period:=0.5", *extra)


def _call(h, client, label):
    fut = client.call_async(MarkEvent.Request(label=label))
    deadline = time.monotonic() + 20
    while not fut.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    return fut.result()


def test_a_study_run_with_a_logger_restart_loses_and_duplicates_nothing(tmp_path):
    nodes = NodeProcess("all_in_one", "-r", f"__ns:={NS}")
    logger = _logger(tmp_path)
    h = Harness()
    try:
        truth = h.collect(AffectArray, f"{NS}/affect", 1000)
        events = h.node.create_publisher(String, f"{NS}/events", 10)
        mark = h.node.create_client(MarkEvent, f"{NS}/mark_event")
        h.wait_for(lambda: h.node.count_subscribers(f"{NS}/image") > 0 and h.node.count_subscribers(f"{NS}/affect") >= 2
                   and mark.wait_for_service(timeout_sec=0.1), 60, "nodes and logger")
        cam = CameraSource(h.node, [demo_frame()], rate=10.0, topic=f"{NS}/image")
        mic = MicrophoneSource(h.node, speech_16k(20.0), topic_prefix=f"{NS}/")
        h.wait_for(lambda: len(truth) > 40, 30, "affect")
        h.wait_for(lambda: events.get_subscription_count() > 0, 10, "events subscription")
        events.publish(String(data="start"))
        time.sleep(1.0)
        logger.stop()                                   # the logger dies mid-session ...
        time.sleep(1.0)
        logger2 = _logger(tmp_path)                     # ... and comes back: same session
        h.wait_for(lambda: "session 's1' (run 1)" in logger2.log(), 60, "restarted logger configured")
        h.wait_for(lambda: mark.wait_for_service(timeout_sec=0.1) and h.node.count_subscribers(f"{NS}/affect") >= 2, 60,
                   "restarted logger")
        answer = _call(h, mark, "condition:B")
        assert answer.success
        time.sleep(2.0)
        cam.timer.cancel()
        mic.timer.cancel()
        time.sleep(1.5)
        logger2.stop()                                  # SIGTERM: what waits in memory is still written
    finally:
        h.close()
        nodes.stop()
        logger.stop()
    folder = tmp_path / "s1"
    with open(folder / "affect.csv") as f:
        rows = list(csv.DictReader(f))
    with open(folder / "events.csv") as f:
        marks = list(csv.DictReader(f))
    keys = [(round(float(r["stamp"]), 6), r["track_id"]) for r in rows]
    assert len(keys) == len(set(keys)), "duplicated rows"
    logged = set(keys)
    first, last = min(k[0] for k in keys), max(k[0] for k in keys)
    expected = {(round(conversions.stamp_to_seconds(m.header.stamp), 6), track_name(p.track_id)) for m in truth
                for p in m.people
                if first <= round(conversions.stamp_to_seconds(m.header.stamp), 6) <= last}
    assert len(expected) > 100 and expected == logged, (len(expected - logged), len(logged - expected))
    assert {r["participant"] for r in rows} == {"P01"} and {r["condition"] for r in rows} == {"A"}
    assert [m["label"] for m in marks] == ["start", "condition:B"]
    assert marks[1]["stamp"] == f"{answer.stamp.sec}.{answer.stamp.nanosec:09d}"       # to the nanosecond
    assert first < float(marks[0]["stamp"]) < float(marks[1]["stamp"]) < last
    meta = json.loads((folder / "session.json").read_text())
    assert meta["participant"] == "P01" and len(meta["runs"]) == 2
    assert all("stopped" in run for run in meta["runs"])       # each run's end (SIGTERM) is recorded
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("bag_")) == ["bag_000", "bag_001"]
    assert "Traceback" not in logger.log() + logger2.log()


def test_unwritable_folder_fails_at_start_and_a_full_disk_is_reported_without_losing_rows(tmp_path):
    bad = NodeProcess("session_logger_node", "-p", "output_dir:=/proc/emo_sessions")
    try:
        assert bad.wait_exit(60) == 1
    finally:
        bad.stop()
    assert "parameter 'output_dir' is '/proc/emo_sessions': session folder '/proc/emo_sessions/" in bad.log()
    (tmp_path / "s1").mkdir()
    os.symlink("/dev/full", tmp_path / "s1" / "affect.csv")       # every write: No space left on device
    logger = _logger(tmp_path, "-p", "diagnostics_period:=0.3")
    h = Harness()
    try:
        from diagnostic_msgs.msg import DiagnosticArray
        diags = h.collect(DiagnosticArray, "/diagnostics")
        from emo_perception.nodes.fusion_node import AFFECT_QOS
        pub = h.node.create_publisher(AffectArray, f"{NS}/affect", AFFECT_QOS)   # as the fusion node publishes
        h.wait_for(lambda: pub.get_subscription_count() > 0, 60, "logger")
        for k in range(10):
            msg = AffectArray(mode="prior")
            msg.header.stamp = conversions.seconds_to_stamp(50.0 + k * 0.04)
            from emo_perception_msgs.msg import Affect
            msg.people.append(Affect(track_id="f0", valence=0.1, arousal=0.2, confidence=0.5, modalities=1))
            pub.publish(msg)
        h.wait_for(lambda: "No space left on device" in latest_status(diags, "session_logger_node")[1], 15,
                   "diagnostics ERROR naming the full disk")
        status = latest_status(diags, "session_logger_node")
        assert int(status[2]["rows_waiting"]) == 10 and logger.alive()
    finally:
        h.close()
        logger.stop()
    assert "cannot write" in logger.log() and "No space left on device" in logger.log()


def test_rows_beyond_the_memory_bound_are_dropped_oldest_first_and_counted(tmp_path, monkeypatch):
    from emo_perception.runtime import session_log
    monkeypatch.setattr(session_log, "MAX_PENDING_ROWS", 5)
    log = session_log.SessionLog(tmp_path / "s", {"participant": "P", "condition": "A", "notes": ""})
    for k in range(8):                                   # the disk never took them (no flush)
        log.add_affect(1_000_000_000 + k * 40_000_000, [("f0", 0.1, 0.2, 0.5, True, False)])
    assert log.rows_dropped == 3 and [r[0] for r in log.pending][0] == "1.120000000"
