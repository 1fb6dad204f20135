"""emo_demo: the main job on the embedded defaults, offline, in a minute or two.

Makes a sample recording from real media that installed packages ship (two real faces in turn:
scikit-image's astronaut, public domain, speaking, her smile turning down and back, then a face of its
LFW subset; real read speech from Debian's pocketsphinx-testdata, LibriVox, public domain), turns it
into a rosbag2 file the way a robot records (emo_bag from-media), plays it live through the three
nodes (emo_perception_all on simulated time, the package's config: prior mode, shipped expression
teacher, ONNX Runtime), and writes a report folder (emo_eval). Prints what went in, who was seen,
mean valence/arousal per person, the first-estimate time and the steady-state latency apart, and
where the report is.

    emo_demo [--out emo_demo_out] [--video clip.mp4 [--audio speech.wav]]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import sys

import numpy as np

from .evaluate import add_ready_timeout, why_nothing

SAMPLE_SECONDS, SAMPLE_FPS = 8.0, 15.0
SAMPLE_DESCRIPTION = (f"{SAMPLE_SECONDS:.0f} s: scikit-image's astronaut speaking (her jaw follows the speech, her "
                      "smile turns down and back every 4 s), then a face of its LFW subset; read speech from "
                      "Debian's pocketsphinx-testdata")


def sample_clip(path) -> pathlib.Path:
    from ..recordings.media import Audio, write_clip
    from ..recordings.sample_media import load_speech, moving_demo_frames

    speech = load_speech()[: int(SAMPLE_SECONDS * 16000)]
    frames = moving_demo_frames(SAMPLE_SECONDS, SAMPLE_FPS, speech)
    write_clip(path, frames, SAMPLE_FPS, Audio((speech * 32767).astype(np.int16)[:, None], 16000))
    return pathlib.Path(path)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="emo_demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="emo_demo_out", help="folder for the clip, the bag and the report "
                                                          "(default: %(default)s; its bag/ is replaced)")
    ap.add_argument("--video", help="your own video (default: a sample made from real media in installed packages)")
    ap.add_argument("--audio", help="a separate audio file for --video")
    ap.add_argument("--params-file", help="the nodes' params file (default: the package's)")
    add_ready_timeout(ap, "")
    return ap


def main(argv=None):
    a = parser().parse_args(argv)
    from ..eval.bags import BagError
    from ..eval.evaluate import evaluate, run_offline
    from ..eval.from_media import media_to_bag
    from ..eval.latency import describe
    from ..eval.live import evaluate_live
    from ..recordings.media import MediaError
    from ..eval.report import write_report
    from ..runtime import load_configs
    from .evaluate import summary as eval_summary

    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        configs = load_configs(a.params_file)   # a bad value: one line now, not after the clip and the nodes
        video = pathlib.Path(a.video) if a.video else sample_clip(out / "sample.mp4")
        bag = out / "bag"
        shutil.rmtree(bag, ignore_errors=True)
        made = media_to_bag(video, bag, a.audio)
        print(f"[emo_demo] recording: {video} -> {bag}: {made['images']} frames ({made['image_format']}), "
              f"{made['audio_chunks']} audio chunks ({made['duration_s']:.1f} s, {made['size_bytes'] / 1e6:.1f} MB)",
              flush=True)
        print("[emo_demo] playing it through the three nodes (emo_perception_all, simulated time) ...", flush=True)
        live, latencies, node_log = evaluate_live(bag, a.params_file, ready_timeout=a.ready_timeout)
        offline = run_offline(bag, configs)
        live.inputs, live.counts, live.problems = offline.inputs, offline.counts, offline.problems
        metrics = evaluate([live], lambda r: None)
        metrics["live_vs_offline"] = {str(bag): {"offline_steps": len(offline.frames), "live_steps": len(live.frames)}}
        what = video.name if a.video else "the sample recording"
        source = (f"{video}" + (f" with audio {a.audio}" if a.audio else "")) if a.video else \
            (f"{video}: made here from real media ({SAMPLE_DESCRIPTION})")
        report = write_report(out / "report", [live], metrics, lambda r: None, {str(bag): latencies},
                              title=f"emo_demo: live run of {what}",
                              run={"input": source, "bag": f"{bag} (emo_bag from-media)",
                                   "evaluation": "live: the three nodes (emo_perception_all) on simulated time, the "
                                                 "bag played with /clock; no annotations, so nothing is scored",
                                   "params file": a.params_file or "the package's (config/emo_perception.yaml)"})
    except (BagError, MediaError, FileNotFoundError, RuntimeError, ValueError) as err:
        print(f"emo_demo: {err}", file=sys.stderr)
        return 1
    result = eval_summary(metrics, [live], report)["sessions"][str(bag)]
    if latencies:
        result["latency_ms"] = latencies.summary()
    result.update(report=str(report), mode=live.frames[-1].mode if live.frames else None,
                  offline_steps=len(offline.frames))
    for person, s in sorted(result["people"].items()):
        print(f"[emo_demo] {person}: {s['steps']} steps, mean valence {s['mean_valence']:+.2f}, "
              f"mean arousal {s['mean_arousal']:+.2f}")
    if "latency_ms" in result:
        print(f"[emo_demo] {describe(result['latency_ms'])}")
    print(f"[emo_demo] report: {report}")
    print(json.dumps(result))
    for line in why_nothing([live]):
        print(f"emo_demo: {line}", file=sys.stderr)
    return 0 if live.frames else 1


if __name__ == "__main__":
    sys.exit(main())
