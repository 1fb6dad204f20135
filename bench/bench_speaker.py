"""Speaker attribution on generated two-person clips (one speaker, real faces, real speech; the
listener's head moves as much as the speaker's): per seed, the voiced 40 ms steps whose voice went to
the speaker, to the listener, or to nobody in view, through the runtime pipelines (eval/speaker.py).
Writes JSON; target: >= 90 % of voiced steps to the speaker. With --lip-sources, each lip source
(the detector keypoints' mouth patches, the landmarker's jawOpen) and detect_every on the same clips,
side by side in one run.

    python bench_speaker.py [--seeds 5] [--out results/speaker.json]
    python bench_speaker.py --lip-sources --seeds 5 --seconds 6 --out results/speaker_lip_sources.json
    python bench_speaker.py --profiles default,profiles/face_30hz_detect_every_3.yaml --fps 30 \
        --out results/speaker_30hz.json

--profiles: the package's defaults and params files over them (a name in the package's config/ or a path),
on the same clips at --fps, side by side.
"""
import argparse
import dataclasses
import json
import pathlib
import time

from emo_perception.eval.speaker import attribution_on_clip
from emo_perception.runtime import load_configs

# (name, face node settings)
EVERY_1 = {"detect_every": 1, "detect_async": False}
EVERY_3 = {"detect_every": 3, "detect_async": False}
ASYNC_3 = {"detect_every": 3, "detect_async": True}     # the defaults since issue 21's detect_async
LIP_VARIANTS = (("keypoints, detect_every 1", {"face_landmarks": False, "lip_source": "keypoints", **EVERY_1}),
                ("landmarks (jawOpen), detect_every 1", {"face_landmarks": True, "lip_source": "landmarks",
                                                         **EVERY_1}),
                ("keypoints, detect_every 3", {"face_landmarks": False, "lip_source": "keypoints", **EVERY_3}),
                ("landmarks (jawOpen), detect_every 3", {"face_landmarks": True, "lip_source": "landmarks",
                                                         **EVERY_3}),
                ("keypoints, detect_every 3, detect_async (default)", {"face_landmarks": False,
                                                                       "lip_source": "keypoints", **ASYNC_3}),
                ("landmarks (jawOpen), detect_every 3, detect_async", {"face_landmarks": True,
                                                                       "lip_source": "landmarks", **ASYNC_3}))


def _pooled(runs):
    voiced = sum(r["voiced_steps"] for r in runs.values())
    pooled = {k: sum(r[k] for r in runs.values()) for k in ("voiced_steps", "to_speaker", "to_listener", "voice_only",
                                                             "to_other")}
    pooled["accuracy"] = round(pooled["to_speaker"] / voiced, 3) if voiced else 0.0
    return pooled


def lip_sources(seeds, seconds):
    """Every variant on every seed's clip, the variants interleaved per seed."""
    out = {name: {} for name, _ in LIP_VARIANTS}
    for seed in range(seeds):
        for name, settings in LIP_VARIANTS:
            configs = load_configs(None)
            configs["face_embedding_node"] = dataclasses.replace(configs["face_embedding_node"], **settings)
            t = time.perf_counter()
            out[name][seed] = attribution_on_clip(seconds, seed=seed, configs=configs)
            out[name][seed]["seconds_to_run"] = round(time.perf_counter() - t, 1)
    return {"bench": "speaker_attribution_lip_sources", "clip_seconds": seconds, "seeds": seeds,
            "variants": {name: {"settings": dict(s), "pooled": _pooled(out[name]), "runs": out[name]}
                         for name, s in LIP_VARIANTS}}


def profiles(names, seeds, seconds, fps):
    """Each profile on every seed's clip (at `fps`), interleaved per seed."""
    pkg_config = pathlib.Path(__file__).resolve().parents[1] / "emo_perception" / "config"
    paths = {n: None if n == "default" else (pathlib.Path(n) if pathlib.Path(n).is_file() else pkg_config / n)
             for n in names}
    missing = [n for n, p in paths.items() if p is not None and not p.is_file()]
    if missing:
        raise SystemExit(f"--profiles: no params file {missing} (neither a path nor in {pkg_config})")
    out = {n: {} for n in names}
    for seed in range(seeds):
        for name, path in paths.items():
            t = time.perf_counter()
            out[name][seed] = attribution_on_clip(seconds, fps=fps, seed=seed, configs=load_configs(path))
            out[name][seed]["seconds_to_run"] = round(time.perf_counter() - t, 1)
    return {"bench": "speaker_attribution_profiles", "clip_seconds": seconds, "clip_fps": fps, "seeds": seeds,
            "variants": {n: {"params_file": str(paths[n] or "the package's defaults"), "pooled": _pooled(out[n]),
                             "runs": out[n]} for n in names}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--out", default="results/speaker.json")
    ap.add_argument("--lip-sources", action="store_true", help="compare the lip sources and detect_every")
    ap.add_argument("--profiles", help="params files compared on the same clips, e.g. "
                                       "default,profiles/face_30hz_detect_every_3.yaml")
    ap.add_argument("--fps", type=float, default=15.0, help="the clips' frame rate (with --profiles)")
    a = ap.parse_args()
    if a.lip_sources or a.profiles:
        out = lip_sources(a.seeds, a.seconds) if a.lip_sources else profiles(a.profiles.split(","), a.seeds,
                                                                              a.seconds, a.fps)
        pathlib.Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(a.out).write_text(json.dumps(out, indent=1))
        print(json.dumps({k: v["pooled"] for k, v in out["variants"].items()}, indent=1))
        return
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
