"""The session log of a study, without ROS: a folder per session with session.json (pseudonymous
metadata and every run of the logger), affect.csv (one row per person per 40 ms step), events.csv,
and one bag per logger run (affect, events, optionally embeddings; never raw media).

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

AFFECT_COLUMNS = ["stamp", "time", "participant", "condition", "track_id", "valence", "arousal", "confidence",
                  "face", "voice"]
EVENT_COLUMNS = ["stamp", "time", "label", "source"]
MAX_PENDING_ROWS = 250_000    # ~40 min of 4 people at 25 Hz held in memory while the disk refuses writes


class SessionLogError(OSError):
    """The session folder or a file in it cannot be written; the text says which and why."""


def stamp_text(stamp_ns: int) -> str:
    """Integer nanoseconds -> 'sec.nanosec' exactly (what a ROS stamp holds)."""
    return f"{stamp_ns // 1_000_000_000}.{stamp_ns % 1_000_000_000:09d}"


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
        meta["runs"].append({"started": datetime.datetime.now().isoformat(timespec="seconds"), **{
            k: v for k, v in metadata.items() if meta.get(k) != v}})
        self.metadata, self.run = meta, len(meta["runs"]) - 1
        self._write(self.meta_path, json.dumps(meta, indent=2) + "\n")
        self.affect_path, self.events_path = self.folder / "affect.csv", self.folder / "events.csv"
        self.written = self._existing_keys(self.affect_path, ("stamp", "track_id"))
        self.events_written = self._existing_keys(self.events_path, ("stamp", "label"))
        self.pending, self.pending_events = [], []
        self.rows_written = self.events_logged = self.rows_dropped = 0
        self.bagged = set()          # stamps (ns) of affect written to this run's bag: each once
        self._bag = None
        self._connections = {}

    @staticmethod
    def _existing_keys(path, key):
        if not path.is_file():   # e.g. a link to a device: nothing of this session in it
            return set()
        with open(path, newline="") as f:
            return {tuple(row[k] for k in key) for row in csv.DictReader(f)}

    def _write(self, path, text):
        try:
            path.write_text(text)
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
        try:
            self.flush()
        finally:
            if self._bag is not None:
                self._bag.close()
                self._bag = None

    def add_affect(self, stamp_ns: int, people) -> int:
        """people: (track_id, valence, arousal, confidence, face, voice) per person at the step stamped
        `stamp_ns` (integer nanoseconds: the stamp is the row's identity, so no float rounding)."""
        added = 0
        for track, v, a, c, face, voice in people:
            key = (stamp_text(stamp_ns), track)
            if key in self.written:
                continue
            self.written.add(key)
            self.pending.append([key[0], self._relative(stamp_ns), self.metadata.get("participant", ""), self.metadata.get("condition", ""),
                                 track, f"{v:.6f}", f"{a:.6f}", f"{c:.4f}", int(face), int(voice)])
            added += 1
        if len(self.pending) > MAX_PENDING_ROWS:   # the disk has refused writes for a long time: memory is finite
            lost = len(self.pending) - MAX_PENDING_ROWS
            del self.pending[:lost]
            self.rows_dropped += lost
        return added

    def add_event(self, stamp_ns: int, label: str, source: str) -> bool:
        key = (stamp_text(stamp_ns), label)
        if key in self.events_written:
            return False
        self.events_written.add(key)
        self.pending_events.append([key[0], self._relative(stamp_ns), label, source])
        return True

    def flush(self):
        """Append what waits to the CSV files and sync; SessionLogError (rows kept) if the disk refuses."""
        if getattr(self, "_meta_dirty", False):
            self._write(self.meta_path, json.dumps(self.metadata, indent=2) + "\n")
            self._meta_dirty = False
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
