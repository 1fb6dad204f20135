"""Speaker attribution on generated two-person clips (one speaker, real faces, real speech; the
listener's head moves as much as the speaker's): per seed, the voiced 40 ms steps whose voice went to
the speaker, to the listener, or to nobody in view, through the runtime pipelines (eval/speaker.py).
Writes JSON; target: >= 90 % of voiced steps to the speaker.

    python bench_speaker.py [--seeds 5] [--out results/speaker.json]
"""
import argparse
import json
import pathlib
import time

from emo_perception.eval.speaker import attribution_on_clip


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--out", default="results/speaker.json")
    a = ap.parse_args()
    runs = {}
    for seed in range(a.seeds):
        t = time.perf_counter()
        runs[seed] = attribution_on_clip(a.seconds, seed=seed)
        runs[seed]["seconds_to_run"] = round(time.perf_counter() - t, 1)
    voiced = sum(r["voiced_steps"] for r in runs.values())
    out = {"bench": "speaker_attribution_two_person_clip", "clip_seconds": a.seconds, "runs": runs,
           "pooled": {k: sum(r[k] for r in runs.values()) for k in ("voiced_steps", "to_speaker", "to_listener",
                                                                  "voice_only", "to_other")}}
    out["pooled"]["accuracy"] = round(out["pooled"]["to_speaker"] / voiced, 3) if voiced else 0.0
    path = pathlib.Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
