"""The session files as a researcher reads them (pandas, no ROS): every file exists from the start,
no empty cell where a value is known (the voice-only person is track 'voice'), the end of each run is
in session.json, and which participant is which track is in participants.csv and session.json."""
import json

import pandas as pd
import pytest

from emo_perception.core.speaker import VOICE_ONLY, VOICE_ONLY_NAME, track_name
from emo_perception.runtime.live_state import LiveState
from emo_perception.runtime.session_log import (CLOCK_MISMATCH_S, EVENT_COLUMNS, PARTICIPANT_COLUMNS, SessionLog,
                                                clock_mismatch_s, parse_participant)

META = {"participant": "dyad07", "condition": "A", "notes": ""}
S = 1_000_000_000


def _people(k):
    return [("f0", 0.1 * k, 0.2, 0.8, True, False), (VOICE_ONLY, 0.0, 0.4, 0.3, False, True)]


def test_an_empty_session_has_every_file_with_its_header(tmp_path):
    SessionLog(tmp_path / "s", META).close()
    events = pd.read_csv(tmp_path / "s" / "events.csv")
    assert list(events.columns) == EVENT_COLUMNS and len(events) == 0
    assert list(pd.read_csv(tmp_path / "s" / "participants.csv").columns) == PARTICIPANT_COLUMNS
    assert len(pd.read_csv(tmp_path / "s" / "affect.csv")) == 0


def test_the_voice_only_person_has_a_name_pandas_reads(tmp_path):
    assert track_name(VOICE_ONLY) == VOICE_ONLY_NAME == "voice" and track_name("f3") == "f3"
    log = SessionLog(tmp_path / "s", META)
    for k in range(5):
        log.add_affect(100 * S + k * 40_000_000, _people(k))
    log.close()
    affect = pd.read_csv(tmp_path / "s" / "affect.csv")
    assert not affect.isna().any().any()
    assert list(affect["track_id"]) == ["f0", "voice"] * 5
    assert affect.groupby("track_id")["arousal"].mean().to_dict() == pytest.approx({"f0": 0.2, "voice": 0.4})


def test_each_run_records_its_start_stop_counts_and_stamps(tmp_path):
    log = SessionLog(tmp_path / "s", META)
    for k in range(10):
        log.add_affect(100 * S + k * 40_000_000, _people(k))
    log.add_event(100 * S, "start", "topic")
    log.flush()
    running = json.loads((tmp_path / "s" / "session.json").read_text())["runs"][0]
    assert "stopped" not in running and running["rows_written"] == 20      # a killed run: its last flush
    log.close()
    again = SessionLog(tmp_path / "s", {**META, "notes": "second half"})
    again.add_affect(101 * S, _people(0))
    again.close()
    runs = json.loads((tmp_path / "s" / "session.json").read_text())["runs"]
    assert [r["rows_written"] for r in runs] == [20, 2] and [r["events_logged"] for r in runs] == [1, 0]
    assert all(r["stopped"] >= r["started"] for r in runs) and runs[1]["notes"] == "second half"
    assert runs[0]["affect_stamps"] == ["100.000000000", "100.360000000"]


def test_participant_assignments_go_to_participants_csv_and_session_json(tmp_path):
    assert parse_participant("participant:P03=f1") == ("P03", "f1")
    assert parse_participant("participant: P03 = voice") == ("P03", "voice")
    assert parse_participant("condition:B") is None
    with pytest.raises(ValueError, match=r"expected 'participant:<participant>=<track>'"):
        parse_participant("participant:P03 is f1")
    log = SessionLog(tmp_path / "s", META)
    log.add_affect(100 * S, _people(0))
    assert log.add_event(100 * S + 1, "participant:P03=f0", "service") == "participant P03 is track f0"
    assert log.add_event(100 * S + 2, "participant:P04=f0", "topic") == \
        "participant P04 is track f0 (was P03; events.csv keeps both)"
    assert "track f7 has not been seen in this session yet" in log.add_event(100 * S + 3, "participant:P05=f7", "topic")
    assert log.add_event(100 * S + 4, "participant:P06=voice", "service") == "participant P06 is track voice"
    log.add_event(100 * S + 5, "participant:bad", "topic")           # logged as a plain event, assigns nothing
    log.close()
    folder = tmp_path / "s"
    people = pd.read_csv(folder / "participants.csv")
    assert dict(zip(people["track_id"], people["participant"])) == {"f0": "P04", "f7": "P05", "voice": "P06"}
    meta = json.loads((folder / "session.json").read_text())
    assert meta["participants"] == {"f0": "P04", "f7": "P05", "voice": "P06"}
    assert len(pd.read_csv(folder / "events.csv")) == 5
    merged = pd.read_csv(folder / "affect.csv").merge(people[["track_id", "participant"]], on="track_id",
                                                      how="left", suffixes=("_session", ""))
    assert dict(zip(merged["track_id"], merged["participant"])) == {"f0": "P04", "voice": "P06"}
    restarted = SessionLog(folder, META)                    # a restart keeps the assignments
    assert restarted.metadata["participants"]["f0"] == "P04" and restarted.assignments["f7"][1] == "P05"


def test_clock_mismatch_is_seen_beyond_its_tolerance():
    assert clock_mismatch_s(100 * S, 99 * S) is None
    assert clock_mismatch_s(2_000_000 * S, 1000 * S) == pytest.approx(1_999_000)
    late = 1000 * S + int((CLOCK_MISMATCH_S + 1) * S)
    assert clock_mismatch_s(1000 * S, late) == pytest.approx(-CLOCK_MISMATCH_S - 1)


def test_live_state_keeps_early_events_names_tracks_and_their_participants():
    state = LiveState(60.0)
    state.add_event("start")                    # before any data: placed at the first step, not lost
    state.add_affect(500.0, [("f0", 0.1, 0.2, 0.7, True, False), ("", 0.0, 0.3, 0.2, False, True)])
    state.add_event("participant:P03=f0")
    state.add_affect(501.0, [("f0", 0.1, 0.2, 0.7, True, False)])
    snap = state.snapshot()
    assert snap["events"] == [[-1.0, "start"], [-1.0, "participant:P03=f0"]]
    assert sorted(snap["people"]) == ["f0", "voice"]
    assert snap["people"]["f0"]["participant"] == "P03" and snap["people"]["f0"]["confidence"] == 0.7


def test_predictions_csv_names_the_voice_only_person_too(tmp_path):
    from emo_perception.conversions import AffectFrame
    from emo_perception.core.fusion_pipeline import FusionStep, PersonAffect
    from emo_perception.eval.evaluate import SessionResult
    from emo_perception.eval.report import write_predictions

    frames = [AffectFrame(FusionStep(10.0 + k * 0.04, "cam", [PersonAffect("f0", 0.1, 0.2, 0.5, True, False),
                                                              PersonAffect(VOICE_ONLY, 0.0, 0.4, 0.3, False, True)]),
                          "prior", "prior") for k in range(3)]
    write_predictions(tmp_path / "predictions.csv", [SessionResult("bag", frames, 10.0)])
    rows = pd.read_csv(tmp_path / "predictions.csv")
    assert list(rows["track_id"]) == ["f0", "voice"] * 3 and not rows["track_id"].isna().any()
