"""The session log of a study, without ROS: a folder per session with session.json (pseudonymous
metadata, which participant is which track, every run of the logger from start to stop), affect.csv
(one row per person per 40 ms step), events.csv, participants.csv (track -> participant) and one bag
per logger run (affect, events, optionally embeddings; never raw media). The CSV files exist from the
start (a header only while empty) and hold no empty cell where a value is known: the voice-only
person is track `voice` (core.speaker.VOICE_ONLY_NAME), so pandas and R read no NaN there.

Which participant is which track: an event labelled `participant:<id>=<track>` (PARTICIPANT_PREFIX,
e.g. `participant:P03=f1`), by the `events` topic or the `mark_event` service, assigns a participant to
a track for the session (the last assignment of a track wins; events.csv keeps every one).

Rows are appended at every flush and the files flushed to disk; a row is identified by (stamp,
track id), so when a restarted logger receives again what it had already written (the fusion
node keeps its last AffectArray messages for late subscribers), nothing is written twice. A write
that fails (disk full, folder gone) keeps the rows in memory and raises; the next flush retries.
"""
from __future__ import annotations

import csv
import datetime
import json
import os
import pathlib
import re

from ..core.speaker import track_name
from ..paths import atomic_write

AFFECT_COLUMNS = ["stamp", "time", "participant", "condition", "track_id", "valence", "arousal", "confidence",
                  "face", "voice"]
EVENT_COLUMNS = ["stamp", "time", "label", "source"]
PARTICIPANT_COLUMNS = ["track_id", "participant", "stamp", "time", "source"]
PARTICIPANT_PREFIX = "participant:"      # an event `participant:P03=f1`: participant P03 is track f1
_NAME = r"[A-Za-z0-9_.-]+"
_PARTICIPANT_EVENT = re.compile(rf"{PARTICIPANT_PREFIX}\s*({_NAME})\s*=\s*({_NAME})\s*")
CLOCK_MISMATCH_S = 30.0   # an event this far from the affect stamps arriving now: two clocks (see clock_mismatch_s)
MAX_PENDING_ROWS = 250_000    # ~40 min of 4 people at 25 Hz held in memory while the disk refuses writes


class SessionLogError(OSError):
    """The session folder or a file in it cannot be written; the text says which and why."""


def stamp_text(stamp_ns: int) -> str:
    """Integer nanoseconds -> 'sec.nanosec' exactly (what a ROS stamp holds)."""
    return f"{stamp_ns // 1_000_000_000}.{stamp_ns % 1_000_000_000:09d}"


def now_text() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def parse_participant(label: str) -> tuple[str, str] | None:
    """`participant:P03=f1` -> ("P03", "f1"); None for any other event; ValueError (one line saying
    what is expected) for a label that starts with `participant:` but does not fit."""
    if not label.startswith(PARTICIPANT_PREFIX):
        return None
    m = _PARTICIPANT_EVENT.fullmatch(label)
    if m is None:
        raise ValueError(f"event '{label}' is not a participant assignment: expected "
                         f"'{PARTICIPANT_PREFIX}<participant>=<track>', e.g. '{PARTICIPANT_PREFIX}P03=f1' "
                         "(letters, digits, '_', '.', '-')")
    return m.group(1), m.group(2)


def clock_mismatch_s(event_ns: int, newest_affect_ns: int) -> float | None:
    """Seconds between an event's stamp (the logger's clock) and the newest affect stamp (the data's
    clock) while affect arrives, if more than CLOCK_MISMATCH_S: the two clocks differ (a replayed bag
    read by a logger without use_sim_time), and events.csv's times would not line up with affect.csv's."""
    gap = (event_ns - newest_affect_ns) * 1e-9
    return gap if abs(gap) > CLOCK_MISMATCH_S else None


def session_name(participant: str, condition: str, when: datetime.datetime | None = None) -> str:
    when = when or datetime.datetime.now()
    parts = [p for p in (participant, condition) if p] + [when.strftime("%Y%m%d")]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "_".join(parts))


class SessionLog:
    def __init__(self, folder, metadata: dict):
        self.folder = pathlib.Path(folder).expanduser()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = self.folder / ".write_test"
            probe.write_text("")
            probe.unlink()
        except OSError as err:
            raise SessionLogError(f"session folder '{self.folder}' cannot be written: {err.strerror or err}") from err
        self.meta_path = self.folder / "session.json"
        meta = json.loads(self.meta_path.read_text()) if self.meta_path.is_file() else {**metadata, "runs": []}
        meta["runs"].append({"started": now_text(), **{k: v for k, v in metadata.items() if meta.get(k) != v}})
        meta.setdefault("participants", {})
        self.metadata, self.run = meta, len(meta["runs"]) - 1
        self.run_info = meta["runs"][-1]      # this run: start, then counts, stamps and its stop
        self._meta_dirty = self._participants_dirty = False
        self._write(self.meta_path, json.dumps(meta, indent=2) + "\n")
        self.affect_path, self.events_path = self.folder / "affect.csv", self.folder / "events.csv"
        self.participants_path = self.folder / "participants.csv"
        self.written = self._existing_keys(self.affect_path, ("stamp", "track_id"))
        self.events_written = self._existing_keys(self.events_path, ("stamp", "label"))
        self.tracks = {track for _, track in self.written}
        self.assignments = self._existing_assignments()   # track -> row of participants.csv
        for path, columns in ((self.affect_path, AFFECT_COLUMNS), (self.events_path, EVENT_COLUMNS)):
            if not path.exists():          # header only while empty: every file is there from the start
                self._write(path, ",".join(columns) + "\r\n")
        self._write_participants()
        self.pending, self.pending_events = [], []
        self.rows_written = self.events_logged = self.rows_dropped = 0
        self._run_stamps = None       # (first, last) affect stamp (ns) this run received
        self.bagged = set()          # stamps (ns) of affect written to this run's bag: each once
        self._bag = None
        self._connections = {}

    @staticmethod
    def _existing_keys(path, key):
        if not path.is_file():   # e.g. a link to a device: nothing of this session in it
            return set()
        with open(path, newline="") as f:
            return {tuple(row[k] for k in key) for row in csv.DictReader(f)}

    def _existing_assignments(self) -> dict:
        if not self.participants_path.is_file():
            return {}
        with open(self.participants_path, newline="") as f:
            return {row["track_id"]: [row[c] for c in PARTICIPANT_COLUMNS] for row in csv.DictReader(f)}

    def _write(self, path, text):
        try:
            if path.is_file() or not path.exists():
                atomic_write(path, text.encode())     # a kill while writing leaves the old file whole
            else:
                path.write_text(text)                 # not a plain file (a device, a pipe): write into it
        except OSError as err:
            raise SessionLogError(f"cannot write '{path}': {err.strerror or err}") from err

    def bag_path(self) -> pathlib.Path:
        return self.folder / f"bag_{self.run:03d}"

    def open_bag(self, storage: str = "mcap"):
        """This run's bag (a restarted logger writes the next one; emo_eval reads them all)."""
        from rosbags.rosbag2 import StoragePlugin, Writer

        from .bag_types import typestore

        self._store = typestore()
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        try:
            self._bag = Writer(self.bag_path(), version=8, storage_plugin=plugin)
            self._bag.open()
        except OSError as err:
            raise SessionLogError(f"cannot create bag '{self.bag_path()}': {err.strerror or err}") from err

    def write_message(self, topic: str, msgtype: str, t_ns: int, cdr: bytes):
        """One serialized message (affect, events, embeddings) into this run's bag."""
        if self._bag is None:
            return
        try:
            if topic not in self._connections:
                self._connections[topic] = self._bag.add_connection(topic, msgtype, typestore=self._store)
            self._bag.write(self._connections[topic], int(t_ns), cdr)
        except OSError as err:
            raise SessionLogError(f"cannot write bag '{self.bag_path()}': {err.strerror or err}") from err

    def _relative(self, stamp_ns: int) -> str:
        if "t0_ns" not in self.metadata:     # the session's time 0: its first logged stamp
            self.metadata["t0_ns"] = stamp_ns
            self._meta_dirty = True
        return f"{(stamp_ns - self.metadata['t0_ns']) * 1e-9:.3f}"

    def close(self):
        """Write what waits and record the end of this run in session.json (a run without `stopped`
        ended without closing: killed, or the machine went down; its counts are those of its last flush)."""
        try:
            self.run_info["stopped"] = now_text()
            self._meta_dirty = True
            self.flush()
        finally:
            if self._bag is not None:
                self._bag.close()
                self._bag = None

    def add_affect(self, stamp_ns: int, people) -> int:
        """people: (track_id, valence, arousal, confidence, face, voice) per person at the step stamped
        `stamp_ns` (integer nanoseconds: the stamp is the row's identity, so no float rounding)."""
        added = 0
        first, last = self._run_stamps or (stamp_ns, stamp_ns)
        self._run_stamps = (min(first, stamp_ns), max(last, stamp_ns))
        for track, v, a, c, face, voice in people:
            track = track_name(track)
            self.tracks.add(track)
            key = (stamp_text(stamp_ns), track)
            if key in self.written:
                continue
            self.written.add(key)
            self.pending.append([key[0], self._relative(stamp_ns), self.metadata.get("participant", ""),
                                 self.metadata.get("condition", ""), track, f"{v:.6f}", f"{a:.6f}", f"{c:.4f}",
                                 int(face), int(voice)])
            added += 1
        if len(self.pending) > MAX_PENDING_ROWS:   # the disk has refused writes for a long time: memory is finite
            lost = len(self.pending) - MAX_PENDING_ROWS
            del self.pending[:lost]
            self.rows_dropped += lost
        return added

    def add_event(self, stamp_ns: int, label: str, source: str) -> str:
        """Log an event (once per stamp and label). A participant assignment (`participant:P03=f1`)
        also goes to participants.csv and session.json; the answer says what it did ('' for other
        events), e.g. that the track has not been seen yet or had another participant before."""
        key = (stamp_text(stamp_ns), label)
        if key in self.events_written:
            return ""
        self.events_written.add(key)
        self.pending_events.append([key[0], self._relative(stamp_ns), label, source])
        try:
            assignment = parse_participant(label)
        except ValueError:
            return ""      # logged as an event; the caller says what is wrong with it
        if assignment is None:
            return ""
        participant, track = assignment
        before = self.assignments.get(track, [None, None])[1]
        self.assignments[track] = [track, participant, key[0], self._relative(stamp_ns), source]
        self.metadata["participants"][track] = participant
        self._meta_dirty = self._participants_dirty = True
        note = f"participant {participant} is track {track}"
        if before is not None and before != participant:
            note += f" (was {before}; events.csv keeps both)"
        if track not in self.tracks:
            note += f"; track {track} has not been seen in this session yet"
        return note

    def _write_participants(self):
        rows = [PARTICIPANT_COLUMNS] + [self.assignments[t] for t in sorted(self.assignments)]
        self._write(self.participants_path, "".join(",".join(r) + "\r\n" for r in rows))
        self._participants_dirty = False

    def _update_run(self):
        """This run's entry in session.json: counts so far, the affect stamps it received."""
        self.run_info.update(rows_written=self.rows_written, events_logged=self.events_logged,
                             rows_dropped=self.rows_dropped, last_write=now_text())
        if self._run_stamps:
            self.run_info["affect_stamps"] = [stamp_text(s) for s in self._run_stamps]
        self._meta_dirty = True

    def flush(self):
        """Append what waits to the CSV files and sync, then session.json and participants.csv when they
        changed; SessionLogError (rows kept) if the disk refuses."""
        wrote = False
        for path, rows, columns, count in ((self.affect_path, self.pending, AFFECT_COLUMNS, "rows_written"),
                                           (self.events_path, self.pending_events, EVENT_COLUMNS, "events_logged")):
            if not rows:
                continue
            new = not path.exists()
            try:
                with open(path, "a", newline="") as f:
                    w = csv.writer(f)
                    if new:
                        w.writerow(columns)
                    w.writerows(rows)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as err:
                raise SessionLogError(f"cannot write '{path}' ({len(rows)} rows wait in memory): "
                                      f"{err.strerror or err}") from err
            setattr(self, count, getattr(self, count) + len(rows))
            rows.clear()
            wrote = True
        if wrote or self.rows_dropped != self.run_info.get("rows_dropped", 0):
            self._update_run()
        if self._participants_dirty:
            self._write_participants()
        if self._meta_dirty:
            self._write(self.meta_path, json.dumps(self.metadata, indent=2) + "\n")
            self._meta_dirty = False
