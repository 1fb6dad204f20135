"""Everything about TensorRT engines that is not a TensorRT call (pure; tested without TensorRT):
cache keys and file names, optimization and calibration shapes, calibration data checks and
batching, dtype mapping, engine I/O checks, atomic and locked file writes, platform versions.

An engine only runs on the GPU, TensorRT/CUDA/L4T versions, precision (and TF32 setting),
workspace and shape range it was built for, and only represents the ONNX file (and, for INT8,
the calibration data) it was built from: all of these go into the key, so a change of any one of
them selects (or builds) a different engine instead of loading a wrong one.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import pathlib
import re
from dataclasses import asdict, dataclass

import numpy as np

from ..paths import atomic_write  # noqa: F401  (the engine, calibration and timing caches are written with it)

PRECISIONS = ("fp16", "fp32", "int8")
WORKSPACE_BYTES = 1 << 30
# TensorRT DataType names -> numpy (what the engine's tensors hold; outputs keep their dtype)
TRT_DTYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64,
              "BOOL": np.bool_, "UINT8": np.uint8}


@dataclass(frozen=True)
class EngineKey:
    onnx_sha256: str
    gpu_name: str
    compute_capability: str      # e.g. "8.7" (Orin)
    tensorrt_version: str
    precision: str
    shapes: tuple                # ((input name, min, opt, max), ...) with shapes as tuples
    tf32: bool = False           # TF32 kernels allowed (fp16/int8 builds; never for fp32)
    workspace_bytes: int = WORKSPACE_BYTES
    cuda_version: str = ""       # CUDA runtime, e.g. "12.6"
    l4t_version: str = ""        # Jetson Linux release, e.g. "36.4.0"; "" off Jetson
    calibration_id: str = ""     # digest of the INT8 calibration data; "" otherwise

    def digest(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True, default=list).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def engine_path(self, cache_dir, model_name: str) -> pathlib.Path:
        return pathlib.Path(cache_dir) / f"{model_name}.{self.precision}.{self.digest()}.engine"


def engine_key(card, precision: str, batch_range, platform: dict, calibration_id: str = "",
               time_range=(1, 1, 1), image_size=None) -> EngineKey:
    """The key of the engine a backend with these options builds or loads. `platform`: gpu_name,
    compute_capability, tensorrt_version, cuda_version, l4t_version (what the device reports)."""
    return EngineKey(card.onnx_sha256, platform["gpu_name"], platform["compute_capability"],
                     platform["tensorrt_version"], precision,
                     profile_shapes(card.inputs, batch_range, time_range, image_size),
                     tf32_allowed(precision), WORKSPACE_BYTES, platform.get("cuda_version", ""),
                     platform.get("l4t_version", ""), calibration_id)


def tf32_allowed(precision: str) -> bool:
    """TensorRT enables TF32 by default (and Orin has it): an 'fp32' engine must clear it."""
    return precision != "fp32"


def profile_shapes(card_inputs, batch_range=(1, 1, 8), time_range=(1, 1, 1), image_size=None) -> tuple:
    """(name, min, opt, max) for every input, filling the card's named dynamic axes; `image_size`
    (width, height) fixes an image model's "height" and "width" (the detector's canvas)."""
    ranges = {"batch": batch_range, "time": time_range}
    if image_size:
        ranges.update(width=(image_size[0],) * 3, height=(image_size[1],) * 3)
    missing = {d for spec in card_inputs for d in spec["shape"] if isinstance(d, str)} - set(ranges)
    if missing:
        raise ValueError(f"inputs {[s['name'] for s in card_inputs]} have dynamic axes {sorted(missing)} with no "
                         "size given (an image model needs image_size)")
    out = []
    for spec in card_inputs:
        dims = [ranges[d] if isinstance(d, str) else (d, d, d) for d in spec["shape"]]
        out.append((spec["name"],) + tuple(tuple(d[i] for d in dims) for i in range(3)))
    return tuple(out)


def calibration_shapes(card_inputs, batch: int) -> tuple:
    """The calibration profile: every input fixed at `batch` (TensorRT 10 calibrates at the
    calibration profile's opt shape and ignores get_batch_size, so batches must be exactly this)."""
    return profile_shapes(card_inputs, (batch, batch, batch))


def batch_axis(spec) -> int:
    """Where the batch axis of a card input is (first for most; the GRU state is (layers, batch, hidden))."""
    return list(spec["shape"]).index("batch")


def sample_shape(spec) -> tuple:
    """One sample's shape of a card input: the batch axis dropped, a time axis of 1 (streaming)."""
    dims = list(spec["shape"])
    del dims[batch_axis(spec)]
    return tuple(1 if d == "time" else d for d in dims)


def check_calibration_data(card, samples: dict) -> int:
    """`samples`: input name -> float32 array of N samples stacked along that input's batch axis,
    for every input of the model. Returns N. ValueError naming the model, what it takes per sample
    and what the data holds (e.g. face crops offered to the audio encoder)."""
    specs = {spec["name"]: spec for spec in card.inputs}
    wanted = {name: sample_shape(spec) for name, spec in specs.items()}
    got = {}
    for name, x in samples.items():
        shape = list(np.shape(x))
        if name in specs and len(shape) == len(specs[name]["shape"]):
            del shape[batch_axis(specs[name])]
        got[name] = tuple(shape)
    if got != wanted:
        raise ValueError(f"calibration data holds {got or 'nothing'} per sample, but model '{card.name}' takes "
                         f"{wanted}: use calibration inputs of this model's kind (--calibrate-images for face "
                         "models, --calibrate-audio for the audio encoder)")
    counts = {np.shape(x)[batch_axis(specs[name])] for name, x in samples.items()}
    if len(counts) != 1:
        raise ValueError(f"calibration inputs of model '{card.name}' have different sample counts {counts}")
    return counts.pop()


def calibration_batches(card, samples: dict, batch: int) -> list[dict]:
    """Whole batches of exactly `batch` samples along each input's batch axis (a rest smaller than a
    batch is left out), float32 and contiguous, ready to copy to the device."""
    axes = {spec["name"]: batch_axis(spec) for spec in card.inputs}
    n = min(np.shape(x)[axes[name]] for name, x in samples.items()) if samples else 0
    return [{name: np.ascontiguousarray(np.take(x, range(i, i + batch), axis=axes[name]), np.float32)
             for name, x in samples.items()} for i in range(0, n - batch + 1, batch)]


def data_digest(batches: list[dict]) -> str:
    """Identity of calibration data (names, shapes, values): part of the engine key and cache name."""
    h = hashlib.sha256()
    for b in batches:
        for name in sorted(b):
            h.update(name.encode())
            h.update(str(b[name].shape).encode())
            h.update(np.ascontiguousarray(b[name]).tobytes())
    return h.hexdigest()[:16]


def calibration_cache_path(cache_dir, card, calibration_id: str) -> pathlib.Path:
    """Keyed by the ONNX file and the calibration data: a changed model or data never reuses a cache."""
    return pathlib.Path(cache_dir) / f"{card.name}.{card.onnx_sha256[:12]}.{calibration_id}.int8.calib"


def latest_calibration_cache(cache_dir, card) -> pathlib.Path | None:
    """The newest cache for this ONNX file (any calibration data): lets an engine be rebuilt without
    the data, e.g. after a TensorRT update."""
    caches = sorted(pathlib.Path(cache_dir).glob(f"{card.name}.{card.onnx_sha256[:12]}.*.int8.calib"),
                    key=lambda p: p.stat().st_mtime)
    return caches[-1] if caches else None


def numpy_dtype(trt_dtype_name: str):
    """numpy dtype of a TensorRT DataType (by name, e.g. 'HALF'); ValueError for one we cannot hold."""
    name = trt_dtype_name.split(".")[-1].upper()
    if name not in TRT_DTYPES:
        raise ValueError(f"TensorRT data type {trt_dtype_name} has no numpy equivalent here")
    return np.dtype(TRT_DTYPES[name])


def check_engine_io(card, engine_io: dict):
    """`engine_io`: tensor name -> 'INPUT'/'OUTPUT' from the engine. The card's inputs and outputs
    must be exactly those (a stale or foreign engine fails here instead of reading wrong memory)."""
    want = {**{s["name"]: "INPUT" for s in card.inputs}, **{s["name"]: "OUTPUT" for s in card.outputs}}
    if engine_io != want:
        raise ValueError(f"engine tensors {engine_io} do not match model card '{card.path}' ({want}); "
                         "rebuild with force_engine_update")


def check_input_shape(name: str, shape, min_shape, max_shape):
    if len(shape) != len(max_shape) or any(not (lo <= s <= hi) for s, lo, hi in zip(shape, min_shape, max_shape)):
        raise ValueError(f"input '{name}' shape {tuple(shape)} is outside the engine profile {min_shape}..{max_shape}")


def trtexec_command(onnx_path, engine_path, shapes, precision: str, timing_cache=None, calib_cache=None) -> str:
    """The trtexec line that builds an equivalent engine, for users who prefer the CLI."""
    fmt = lambda i: ",".join(f"{name}:{'x'.join(map(str, s[i]))}" for name, *s in shapes)  # noqa: E731
    parts = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={engine_path}",
             f"--minShapes={fmt(0)}", f"--optShapes={fmt(1)}", f"--maxShapes={fmt(2)}",
             f"--memPoolSize=workspace:{WORKSPACE_BYTES >> 20}M"]
    if precision == "fp16":
        parts.append("--fp16")
    elif precision == "int8":
        parts += ["--int8", "--fp16"] + ([f"--calib={calib_cache}"] if calib_cache else [])
    else:
        parts.append("--noTF32")
    if timing_cache:
        parts.append(f"--timingCacheFile={timing_cache}")
    return " ".join(parts)


# ------------------------------------------------------------------------- files and platform
@contextlib.contextmanager
def locked(path):
    """An exclusive lock (flock on `<path>.lock`) around read-modify-write of a shared file, e.g. the
    timing cache that two nodes building engines at the same start-up both update."""
    import fcntl

    lock = pathlib.Path(f"{path}.lock")
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def timing_cache_or_empty(create, blob: bytes, warn):
    """`create(blob)` is IBuilderConfig.create_timing_cache. A corrupt or foreign cache (None or an
    exception) is ignored with a warning and an empty one is used: it only speeds builds up."""
    if blob:
        try:
            cache = create(blob)
        except (RuntimeError, TypeError, ValueError) as err:
            cache, why = None, str(err)
        else:
            why = "TensorRT could not read it"
        if cache is not None:
            return cache
        warn(f"timing cache ignored ({why}); starting an empty one")
    return create(b"")


def parse_l4t_release(text: str) -> str:
    """'# R36 (release), REVISION: 4.0, ...' (/etc/nv_tegra_release) -> '36.4.0'."""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"{m.group(1)}.{m.group(2)}" if m else ""


def l4t_version(path="/etc/nv_tegra_release") -> str:
    try:
        return parse_l4t_release(pathlib.Path(path).read_text())
    except OSError:
        return ""


def cuda_version_text(version: int) -> str:
    """cudaRuntimeGetVersion's 12060 -> '12.6'."""
    return f"{version // 1000}.{(version % 1000) // 10}"
