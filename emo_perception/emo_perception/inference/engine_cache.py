"""TensorRT engine cache keys and the equivalent trtexec command (pure; testable without TensorRT).

An engine only runs on the GPU model, TensorRT version, precision and shape range it was built
for, and only represents the ONNX file it was built from: all of these go into the key, so a
change of any one of them selects (or builds) a different engine instead of loading a wrong one.
"""
from __future__ import annotations

import hashlib
import json
import pathlib
from dataclasses import asdict, dataclass

PRECISIONS = ("fp16", "fp32", "int8")


@dataclass(frozen=True)
class EngineKey:
    onnx_sha256: str
    gpu_name: str
    compute_capability: str      # e.g. "8.7" (Orin)
    tensorrt_version: str
    precision: str
    shapes: tuple                # ((input name, min, opt, max), ...) with shapes as tuples

    def digest(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True, default=list).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def engine_path(self, cache_dir, model_name: str) -> pathlib.Path:
        return pathlib.Path(cache_dir) / f"{model_name}.{self.precision}.{self.digest()}.engine"


def profile_shapes(card_inputs, batch_range=(1, 1, 8), time_range=(1, 1, 1)) -> tuple:
    """(name, min, opt, max) for every input, filling the card's named dynamic axes."""
    ranges = {"batch": batch_range, "time": time_range}
    out = []
    for spec in card_inputs:
        dims = [ranges[d] if isinstance(d, str) else (d, d, d) for d in spec["shape"]]
        out.append((spec["name"],) + tuple(tuple(d[i] for d in dims) for i in range(3)))
    return tuple(out)


def trtexec_command(onnx_path, engine_path, shapes, precision: str, timing_cache=None, calib_cache=None) -> str:
    """The trtexec line that builds an equivalent engine, for users who prefer the CLI."""
    fmt = lambda i: ",".join(f"{name}:{'x'.join(map(str, s[i]))}" for name, *s in shapes)  # noqa: E731
    parts = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={engine_path}",
             f"--minShapes={fmt(0)}", f"--optShapes={fmt(1)}", f"--maxShapes={fmt(2)}"]
    if precision == "fp16":
        parts.append("--fp16")
    elif precision == "int8":
        parts += ["--int8", "--fp16"] + ([f"--calib={calib_cache}"] if calib_cache else [])
    if timing_cache:
        parts.append(f"--timingCacheFile={timing_cache}")
    return " ".join(parts)
