"""Does the estimate follow the demo's face? emo_demo's sample recording (the astronaut speaking, her smile
turning down and back every 4 s, then a face of lfw_subset) replayed offline through the runtime, with the
package's params and with config/face_landmarks.yaml: per track, the valence and arousal ranges and the
correlation of valence with the smile schedule (recordings/sample_media.demo_smile).

    python bench/bench_demo_follow.py [--out bench/results/demo_follow.json]
"""
import argparse
import json
import pathlib
import tempfile

import numpy as np

from emo_perception.cli.demo import SAMPLE_DESCRIPTION, sample_clip
from emo_perception.eval.evaluate import run_offline
from emo_perception.eval.from_media import media_to_bag
from emo_perception.recordings.sample_media import demo_smile
from emo_perception.runtime import load_configs

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROFILES = {"package defaults": None, "config/face_landmarks.yaml": ROOT / "emo_perception/config/face_landmarks.yaml"}


def per_track(result) -> dict:
    rows = {}
    for frame in result.frames:
        for p in frame.step.people:
            rows.setdefault(p.track_id or "voice only", []).append((frame.step.time - result.start, p.valence,
                                                                    p.arousal))
    out = {}
    for track, r in sorted(rows.items()):
        t, v, a = np.array(r).T
        out[track] = {"steps": len(t), "seconds": [round(float(t.min()), 2), round(float(t.max()), 2)],
                      "valence_range": [round(float(v.min()), 3), round(float(v.max()), 3)],
                      "arousal_range": [round(float(a.min()), 3), round(float(a.max()), 3)],
                      "valence_correlation_with_smile": round(float(np.corrcoef(demo_smile(t), v)[0, 1]), 3)
                      if v.std() > 0 else None}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "bench/results/demo_follow.json"))
    a = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp())
    media_to_bag(sample_clip(work / "sample.mp4"), work / "bag")
    out = {"bench": "demo_follow", "sample": SAMPLE_DESCRIPTION, "replay": "offline (eval/evaluate.run_offline)",
           "profiles": {name: per_track(run_offline(work / "bag", load_configs(path)))
                        for name, path in PROFILES.items()}}
    pathlib.Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
