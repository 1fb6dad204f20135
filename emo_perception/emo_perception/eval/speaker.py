"""Speaker attribution measured on a generated two-person clip (recordings/sample_media.two_person_clip):
the clip goes the robot's way (H.264 MP4 -> rosbag2 -> the runtime pipelines, runtime/offline.py),
and every voiced 40 ms step is checked: did the voice go to the person whose lips move?"""
from __future__ import annotations

import pathlib
import tempfile

import numpy as np

from ..core.speaker import VOICE_ONLY
from ..runtime import load_configs
from ..recordings.sample_media import two_person_clip
from .evaluate import run_offline
from .from_media import media_to_bag
from ..recordings.media import Audio, write_clip


def attribution_on_clip(seconds: float = 8.0, fps: float = 15.0, seed: int = 0, configs: dict | None = None,
                        workdir=None) -> dict:
    """Counts of voiced steps by outcome, and the accuracy (steps given to the speaker / voiced steps)."""
    frames, speech, speaker_index = two_person_clip(seconds, fps, seed=seed)
    work = pathlib.Path(workdir or tempfile.mkdtemp())
    clip = work / "two_person.mp4"
    write_clip(clip, frames, fps, Audio((speech * 32767).astype(np.int16)[:, None], 16000))
    media_to_bag(clip, work / "two_person_bag")
    result = run_offline(work / "two_person_bag", configs or load_configs())
    counts = {"voiced_steps": 0, "to_speaker": 0, "to_listener": 0, "voice_only": 0, "to_other": 0,
              "steps_with_two_faces": 0}
    for frame in result.frames:
        step = frame.step
        faces = sorted((p for p in step.people if p.face and p.box is not None), key=lambda p: p.box[0])
        if len(faces) != 2:
            continue
        counts["steps_with_two_faces"] += 1
        if step.speaker is None:
            continue
        counts["voiced_steps"] += 1
        speaker_id, listener_id = faces[speaker_index].track_id, faces[1 - speaker_index].track_id
        outcome = {speaker_id: "to_speaker", listener_id: "to_listener", VOICE_ONLY: "voice_only"}.get(step.speaker,
                                                                                               "to_other")
        counts[outcome] += 1
    counts["accuracy"] = round(counts["to_speaker"] / counts["voiced_steps"], 3) if counts["voiced_steps"] else 0.0
    counts["steps"] = len(result.frames)
    return counts
