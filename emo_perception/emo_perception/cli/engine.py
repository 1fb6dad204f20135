"""emo_engine: build the TensorRT engines the nodes will load, ahead of time on the robot, into the
cache the nodes use, so the first launch does not wait. It reads the same params file as the nodes
and asks the runtime which models they load at which batch sizes, so its engines are exactly the ones
the nodes look up. INT8 calibrates on real inputs (through the runtime preprocessing):

    emo_engine                                             # the package YAML's models, its precision
    emo_engine --params-file my.yaml --precision int8 --calibrate-images ~/faces/ --calibrate-audio ~/wavs/
    emo_engine --node face_embedding_node --force          # one node's model, rebuilt
"""
from __future__ import annotations

import argparse
import json
import sys

from ..inference.engine_cache import PRECISIONS
from ..runtime import ConfigError, load_configs
from ..runtime.config import NODE_CONFIGS
from ..runtime.engine_plan import calibration_for, plan


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="emo_engine", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params-file", help="the nodes' params file (default: the package's config/emo_perception.yaml)")
    ap.add_argument("--namespace", default="", help="namespace the nodes run in (for namespaced YAML blocks; "
                                                     "default: none)")
    ap.add_argument("--node", action="append", choices=tuple(NODE_CONFIGS), help="only this node's model (repeatable)")
    ap.add_argument("--precision", choices=PRECISIONS, help="override the params file's tensorrt_precision")
    ap.add_argument("--force", action="store_true", help="rebuild even if the engine is cached")
    ap.add_argument("--calibrate-images", help="folder of images with faces (int8, face models)")
    ap.add_argument("--calibrate-audio", help="folder of 16-bit WAV files (int8, audio encoder)")
    return ap


def main(argv=None):
    a = parser().parse_args(argv)
    from ..inference import ModelFileError, load_model

    built = []
    try:
        jobs = plan(load_configs(a.params_file, a.namespace), a.node, a.precision, a.force)
        if not jobs:
            print("emo_engine: the configured nodes load no network models (prior mode, logmel_stats audio): "
                  "nothing to build", file=sys.stderr)
        for req, options in jobs:
            samples = calibration_for(req, a.calibrate_images, a.calibrate_audio)
            if options["precision"] == "int8" and samples is None and req.inputs == "embeddings":
                raise ValueError(f"{req.node}: int8 calibration of the fusion GRU needs embedding sequences, "
                                 "which emo_engine cannot make from media; use fp16 for it")
            model = load_model(req.card_path, "tensorrt", calibration_samples=samples, **options)
            built.append({"node": req.node, "model": str(req.card_path), "engine": str(model.engine_path),
                          "precision": options["precision"], "max_batch": req.max_batch})
            model.release()
    except ImportError as err:
        print(f"emo_engine: TensorRT is not available here ({err}); run this on the robot (JetPack)", file=sys.stderr)
        return 1
    except (ConfigError, ModelFileError, ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"emo_engine: {err}", file=sys.stderr)
        return 1
    print(json.dumps(built))
    return 0


if __name__ == "__main__":
    sys.exit(main())
