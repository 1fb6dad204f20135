"""TensorRT backend (TensorRT 10 Python API + cuda-python), for Jetson-class GPUs.

Build: ONNX -> engine with one optimization profile (the configured min/opt/max batch), FP16 by
default (FP32, or INT8 with a calibration cache, as options), a timing cache shared by builds,
and an engine cache keyed by engine_cache.EngineKey. `force_engine_update` rebuilds.
Run: one execution context, one CUDA stream, device buffers allocated once for the profile's
maximum shapes and reused (I/O binding by tensor address), execute_async_v3.

Kept small on purpose: TensorRT cannot be installed on the dev/CI machines, so this file is
tested only where `tensorrt` imports (test_backends.py skips elsewhere).
"""
from __future__ import annotations

import logging
import os
import pathlib

import numpy as np

from .engine_cache import PRECISIONS, EngineKey, profile_shapes, trtexec_command
from .model_card import ModelCard, ModelFileError, verify_onnx_file

log = logging.getLogger(__name__)
DEFAULT_CACHE = pathlib.Path(os.environ.get("EMO_ENGINE_CACHE", "~/.cache/emo_perception/engines")).expanduser()
WORKSPACE_BYTES = 1 << 30


def _check(result):
    """cuda-python calls return (error, *values); raise on error, return the values."""
    err, *values = result
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return values[0] if len(values) == 1 else values


class _Calibrator:
    """INT8 entropy calibrator over real input batches; reuses its cache file when present."""

    def __new__(cls, trt, cudart, batches, cache_path):
        class Calibrator(trt.IInt8EntropyCalibrator2):
            def __init__(self):
                super().__init__()
                self.batches, self.index, self.cache_path = list(batches), 0, pathlib.Path(cache_path)
                self.device = _check(cudart.cudaMalloc(max(b.nbytes for b in self.batches))) if self.batches else 0

            def get_batch_size(self):
                return self.batches[0].shape[0] if self.batches else 1

            def get_batch(self, names):
                if self.index >= len(self.batches):
                    return None
                batch = np.ascontiguousarray(self.batches[self.index], np.float32)
                self.index += 1
                _check(cudart.cudaMemcpy(self.device, batch.ctypes.data, batch.nbytes,
                                         cudart.cudaMemcpyKind.cudaMemcpyHostToDevice))
                return [int(self.device)]

            def read_calibration_cache(self):
                return self.cache_path.read_bytes() if self.cache_path.is_file() else None

            def write_calibration_cache(self, cache):
                self.cache_path.write_bytes(bytes(cache))

        return Calibrator()


class TensorRTModel:
    backend = "tensorrt"

    def __init__(self, card: ModelCard, precision: str = "fp16", batch_range=(1, 1, 8), time_range=(1, 1, 1),
                 cache_dir=None, force_engine_update: bool = False, calibration_batches=None,
                 calibration_cache=None):
        import tensorrt as trt
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart

        if precision not in PRECISIONS:
            raise ValueError(f"precision '{precision}' unknown; choose one of {PRECISIONS}")
        self._trt, self._cudart, self.card = trt, cudart, card
        self._logger = trt.Logger(trt.Logger.WARNING)
        onnx_path = verify_onnx_file(card)
        props = _check(cudart.cudaGetDeviceProperties(0))
        gpu = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
        self.shapes = profile_shapes(card.inputs, batch_range, time_range)
        key = EngineKey(card.onnx_sha256, gpu, f"{props.major}.{props.minor}", trt.__version__, precision, self.shapes)
        cache_dir = pathlib.Path(cache_dir or DEFAULT_CACHE)
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.engine_path = key.engine_path(cache_dir, card.name)
        timing_cache = cache_dir / "timing.cache"
        calib = pathlib.Path(calibration_cache or cache_dir / f"{card.name}.int8.calib")
        log.info("equivalent build: %s", trtexec_command(onnx_path, self.engine_path, self.shapes, precision,
                                                         timing_cache, calib if precision == "int8" else None))
        if force_engine_update or not self.engine_path.is_file():
            self._build(onnx_path, precision, timing_cache, calibration_batches, calib)
        self._engine = trt.Runtime(self._logger).deserialize_cuda_engine(self.engine_path.read_bytes())
        if self._engine is None:
            raise ModelFileError(f"engine '{self.engine_path}' cannot be loaded on this GPU/TensorRT "
                                 "(built elsewhere or corrupt); rerun with force_engine_update:=true")
        self._context = self._engine.create_execution_context()
        self._stream = _check(cudart.cudaStreamCreate())
        self._buffers = {}
        for name, _min, _opt, max_shape in self.shapes:
            self._alloc(name, max_shape)
            self._context.set_input_shape(name, max_shape)
        for spec in card.outputs:   # output shapes at the profile maximum
            self._alloc(spec["name"], tuple(self._context.get_tensor_shape(spec["name"])))

    def _alloc(self, name, shape):
        dtype = np.dtype(self._trt.nptype(self._engine.get_tensor_dtype(name)))
        nbytes = int(np.prod(shape)) * dtype.itemsize
        ptr = _check(self._cudart.cudaMalloc(nbytes))
        self._buffers[name] = (ptr, dtype, nbytes)
        self._context.set_tensor_address(name, ptr)

    def _build(self, onnx_path, precision, timing_cache, calibration_batches, calib_path):
        trt = self._trt
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)   # TensorRT 10: networks are always explicit-batch
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse(pathlib.Path(onnx_path).read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ModelFileError(f"TensorRT cannot parse '{onnx_path}': {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        if precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if precision == "int8":
            if not calibration_batches and not pathlib.Path(calib_path).is_file():
                raise ValueError("int8 needs calibration batches of real inputs or an existing calibration cache")
            config.set_flag(trt.BuilderFlag.INT8)
            # Kept on self: the builder calls back into it during build_serialized_network, and the
            # binding does not hold a Python reference of its own.
            self._calibrator = _Calibrator(trt, self._cudart, calibration_batches or [], calib_path)
            config.int8_calibrator = self._calibrator
        profile = builder.create_optimization_profile()
        for name, min_shape, opt_shape, max_shape in self.shapes:
            profile.set_shape(name, min_shape, opt_shape, max_shape)
        config.add_optimization_profile(profile)
        cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
        log.info("building TensorRT engine %s (minutes on a Jetson)", self.engine_path)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise ModelFileError(f"TensorRT failed to build an engine from '{onnx_path}' (see the log above)")
        self.engine_path.write_bytes(bytes(plan))
        timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart = self._cudart
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name, min_shape, _opt, max_shape in self.shapes:
            ptr, dtype, nbytes = self._buffers[name]
            x = np.ascontiguousarray(inputs[name], dtype)
            if x.ndim != len(max_shape) or any(not (lo <= s <= hi) for s, lo, hi in zip(x.shape, min_shape, max_shape)):
                raise ValueError(f"input '{name}' shape {x.shape} is outside the engine profile {min_shape}..{max_shape}")
            self._context.set_input_shape(name, x.shape)
            _check(cudart.cudaMemcpyAsync(ptr, x.ctypes.data, x.nbytes, h2d, self._stream))
        if not self._context.execute_async_v3(self._stream):
            raise RuntimeError(f"TensorRT execution of '{self.card.name}' failed")
        outputs = {}
        for spec in self.card.outputs:
            ptr, dtype, _ = self._buffers[spec["name"]]
            out = np.empty(tuple(self._context.get_tensor_shape(spec["name"])), dtype)
            _check(cudart.cudaMemcpyAsync(out.ctypes.data, ptr, out.nbytes, d2h, self._stream))
            outputs[spec["name"]] = out
        _check(cudart.cudaStreamSynchronize(self._stream))
        return {k: v.astype(np.float32, copy=False) for k, v in outputs.items()}

    def __del__(self):
        for ptr, _, _ in getattr(self, "_buffers", {}).values():
            self._cudart.cudaFree(ptr)
        if getattr(self, "_stream", None) is not None:
            self._cudart.cudaStreamDestroy(self._stream)
