"""emo_demo: the whole pipeline on the embedded defaults, offline, in one process.

A synthetic camera shows a real face (scikit-image's astronaut, public domain) and a synthetic
microphone plays real read speech (Debian's pocketsphinx-testdata, LibriVox, public domain),
published the way camera drivers and audio_capture do. The three nodes run with the package's
config (prior mode, shipped expression teacher, ONNX Runtime) and the demo prints what
arrives on `affect`, then a JSON summary.

    emo_demo [--seconds 10]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import rclpy
from emo_perception_msgs.msg import Affect, AffectArray

from ..nodes.all_in_one import NODES
from ..nodes.runner import Runner
from .media_files import demo_frame, load_speech
from .media_sources import CameraSource, MicrophoneSource

def _media():
    try:
        return demo_frame(), load_speech()
    except ImportError:
        sys.exit("emo_demo needs scikit-image for its test image (pip install scikit-image)")
    except FileNotFoundError as err:
        sys.exit(str(err))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="emo_demo", description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args(argv)
    face, speech = _media()
    runner = Runner(NODES, ["emo_demo"], default_params=True)
    try:
        code = runner.start()
        if code is not None:
            return code
        sources = rclpy.create_node("emo_demo_sources")
        received = []

        def on_affect(msg):
            received.append(msg)
            if len(received) % 25 == 0:
                people = ", ".join(f"{p.track_id or 'voice'}: valence {p.valence:+.2f} arousal {p.arousal:+.2f} "
                                   f"conf {p.confidence:.2f}" for p in msg.people) or "nobody"
                print(f"[{msg.header.stamp.sec}.{msg.header.stamp.nanosec // 1_000_000:03d}] {people}", flush=True)

        sources.create_subscription(AffectArray, "affect", on_affect, 10)
        CameraSource(sources, [face], rate=15.0)
        MicrophoneSource(sources, speech)
        end = time.monotonic() + a.seconds
        runner.spin([sources], until=lambda: time.monotonic() >= end)
        sources.destroy_node()
    finally:
        runner.close()
    faces = [p for m in received for p in m.people if p.modalities & Affect.MODALITY_FACE]
    summary = {
        "affect_messages": len(received),
        "mode": received[-1].mode if received else None,
        "tracks": sorted({p.track_id for p in faces}),
        "mean_valence": round(float(np.mean([p.valence for p in faces])), 3) if faces else None,
        "mean_arousal": round(float(np.mean([p.arousal for p in faces])), 3) if faces else None,
        "steps_with_voice": sum(any(p.modalities & Affect.MODALITY_VOICE for p in m.people) for m in received),
    }
    print(json.dumps(summary))
    return 0 if received else 1


if __name__ == "__main__":
    sys.exit(main())
