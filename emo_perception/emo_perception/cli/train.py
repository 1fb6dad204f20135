"""emo_train: train the face student, the audio encoder or the fusion GRU on RECOLA, AffectNet or lab
recordings; evaluate by CCC on the held-out split; export ONNX + model card for the nodes.

    emo_train face   --data affectnet:/data/AffectNet --data recola:/data/RECOLA
    emo_train audio  --data recola:/data/RECOLA --set annotation_delay=2.0
    emo_train generate --out data/generated         # a learnable set made from real media (README)
    emo_train fusion --data recola:/data/RECOLA --set face_model=runs/face/export/face_encoder.json
                     --set audio_model=runs/audio/export/audio_encoder.json      (one line)
    torchrun --nproc_per_node 4 $(which emo_train) fusion --config emo_train.yaml   # several GPUs/machines

A YAML file (--config) has a `common:` block and one block per stage; --set key=value overrides it.
--resume continues from <out_dir>/checkpoint.pt exactly where it stopped.
"""
from __future__ import annotations

import argparse
import json
import sys

from ..training.config import STAGES


def main(argv=None):
    ap = argparse.ArgumentParser(prog="emo_train", description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("stage", choices=STAGES + ("generate",))
    ap.add_argument("--config", help="YAML: common: {...}, face: {...}, audio: {...}, fusion: {...}")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting")
    ap.add_argument("--data", action="append", default=[], metavar="FORMAT:ROOT",
                    help="a data set: lab:<folder>, recola:<folder> or affectnet:<folder> (repeatable)")
    ap.add_argument("--resume", action="store_true", help="continue from <out_dir>/checkpoint.pt")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--out", help="generate: the folder to write the generated data sets to")
    ap.add_argument("--sessions", type=int, default=12, help="generate: lab sessions to write")
    a = ap.parse_args(argv)
    if a.stage == "generate":
        from ..training.synthetic import generate
        if not a.out:
            print("emo_train generate: --out <folder> is required", file=sys.stderr)
            return 2
        print(json.dumps(generate(a.out, sessions=a.sessions), indent=2))
        return 0
    from ..training.config import load
    from ..training.run import train_stage

    try:
        cfg = load(a.stage, a.config, a.set, a.data)
        summary = train_stage(a.stage, cfg, resume=a.resume, progress=not a.quiet)
    except (FileNotFoundError, ValueError) as err:   # ConfigError, DatasetError: ValueErrors with the text
        print(f"emo_train {a.stage}: {err}", file=sys.stderr)
        return 1
    if summary:
        print(json.dumps({k: v for k, v in summary.items() if k != "skipped_items"}, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
