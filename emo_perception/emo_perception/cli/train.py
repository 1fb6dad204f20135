"""emo_train: train the face student, the audio encoder or the fusion GRU on RECOLA, AffectNet or lab
recordings; evaluate by CCC on the held-out split; export ONNX + model card for the nodes.

    emo_train face   --data affectnet:/data/AffectNet --data recola:/data/RECOLA
    emo_train audio  --data recola:/data/RECOLA --set annotation_delay=2.0
    emo_train generate --out data/generated         # a learnable set made from real media (docs/training.md)
    emo_train generate --out data/small --set sessions=4 --set seconds=12 --set recola_sessions=0
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

from ..training.config import GENERATE, STAGES, settings_help


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="emo_train", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1] + "\n" + settings_help())
    ap.add_argument("stage", choices=STAGES + (GENERATE,),
                    help="what to train (face, audio, fusion), or generate: write a learnable data set")
    ap.add_argument("--config", help="YAML: common: {...} (every stage), face: {...}, audio: {...}, fusion: {...}, "
                                     "generate: {...}")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override one setting of the stage (repeatable; the keys of each stage are listed below)")
    ap.add_argument("--data", action="append", default=[], metavar="FORMAT:ROOT",
                    help="a data set: lab:<folder>, recola:<folder> or affectnet:<folder> "
                         "(repeatable; not for generate)")
    ap.add_argument("--resume", action="store_true", help="continue from <out_dir>/checkpoint.pt (not for generate)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--out", help="generate only: the folder to write the generated data sets to (the setting 'out')")
    return ap


def main(argv=None):
    a = parser().parse_args(argv)
    from ..training.config import load, load_generate

    try:
        if a.stage == GENERATE:
            from ..training.synthetic import generate

            for given, flag in ((a.data, "--data"), (a.resume, "--resume")):
                if given:
                    raise ValueError(f"{flag} has no effect on generate, which writes data sets (its settings: "
                                     "--out and the --set keys under 'generate' in emo_train --help)")
            cfg = load_generate(a.config, a.set, a.out)
            print(json.dumps(generate(cfg.out, sessions=cfg.sessions, seconds=cfg.seconds,
                                      recola_sessions=cfg.recola_sessions, val_every=cfg.val_every, jobs=cfg.jobs),
                             indent=2))
            return 0
        from ..training.run import train_stage

        if a.out:
            raise ValueError("--out is for generate; a training stage writes to the setting out_dir "
                             "(--set out_dir=<folder>)")
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
