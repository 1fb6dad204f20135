"""TensorRT backend (TensorRT 10 Python API + cuda-python), for Jetson-class GPUs.

Build: ONNX -> engine with one optimization profile (the configured min/opt/max batch), FP16 by
default (FP32 with TF32 off, or INT8 calibrated on real inputs at a fixed calibration profile), a
timing cache shared by builds (locked, written atomically, ignored with a warning when unreadable),
and an engine cache keyed by engine_cache.EngineKey. `force_engine_update` rebuilds.
Run: one execution context, one CUDA stream, device buffers allocated once for the profile's
maximum shapes and reused (I/O binding by tensor address), execute_async_v3; `release()` frees them.

Everything that is not a TensorRT or CUDA call lives in engine_cache.py and is tested everywhere;
this file is the thin layer over the two libraries, tested only where `tensorrt` imports.
"""
from __future__ import annotations

import logging
import os
import pathlib
import time

import numpy as np

from .engine_cache import (PRECISIONS, WORKSPACE_BYTES, atomic_write, calibration_batches, calibration_cache_path,
                           calibration_shapes, check_calibration_data, check_engine_io, check_input_shape,
                           cuda_version_text, data_digest, engine_key, l4t_version, latest_calibration_cache, locked,
                           numpy_dtype, profile_shapes, tf32_allowed, timing_cache_or_empty, trtexec_command)
from .model_card import ModelCard, ModelFileError, ModelRunError, check_model_io, verify_onnx_file

DEFAULT_CACHE = pathlib.Path(os.environ.get("EMO_ENGINE_CACHE", "~/.cache/emo_perception/engines")).expanduser()
CALIBRATION_BATCH = 8          # samples per INT8 calibration batch (the calibration profile's shape)
CUDA_INSUFFICIENT_DRIVER = 35  # cudaErrorInsufficientDriver


def import_cudart():
    """cuda-python's runtime module (cuda.bindings.runtime from 12.6 on, cuda.cudart before)."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        try:
            from cuda import cudart as runtime
        except ImportError as err:
            raise ImportError("cuda-python is not installed: pip install 'cuda-python>=12,<13' "
                              "(JetPack 6 ships CUDA 12)") from err
    return runtime


def _check(result):
    """cuda-python calls return (error, *values); raise on error, return the values."""
    err, *values = result
    if int(err) != 0:
        hint = (": cuda-python is newer than this driver's CUDA (cuda-python 13 needs a CUDA 13 driver); "
                "install 'cuda-python>=12,<13' on JetPack 6") if int(err) == CUDA_INSUFFICIENT_DRIVER else ""
        raise ModelRunError(f"CUDA error {err}{hint}")
    return values[0] if len(values) == 1 else values


def _declared(tensors) -> list:
    """(name, Dims, DataType) of TensorRT tensors -> (name, shape with -1 for dynamic axes, numpy dtype name)."""
    return [(name, tuple(shape), numpy_dtype(str(dtype)).name) for name, shape, dtype in tensors]


class _Calibrator:
    """INT8 entropy calibrator over whole batches of real inputs, one device buffer per input."""

    def __new__(cls, trt, cudart, batches, cache_path):
        class Calibrator(trt.IInt8EntropyCalibrator2):
            def __init__(self):
                super().__init__()
                self.batches, self.index, self.cache_path = batches, 0, pathlib.Path(cache_path)
                self.device = {name: _check(cudart.cudaMalloc(x.nbytes)) for name, x in batches[0].items()} \
                    if batches else {}

            def get_batch_size(self):   # informational in TensorRT 10: the calibration profile rules
                return CALIBRATION_BATCH

            def get_batch(self, names):
                if self.index >= len(self.batches):
                    return None
                batch = self.batches[self.index]
                self.index += 1
                for name in names:
                    x = batch[name]
                    _check(cudart.cudaMemcpy(self.device[name], x.ctypes.data, x.nbytes,
                                             cudart.cudaMemcpyKind.cudaMemcpyHostToDevice))
                return [int(self.device[name]) for name in names]

            def read_calibration_cache(self):
                return self.cache_path.read_bytes() if self.cache_path.is_file() else None

            def write_calibration_cache(self, cache):
                atomic_write(self.cache_path, bytes(cache))

            def free(self):
                for ptr in self.device.values():
                    cudart.cudaFree(ptr)
                self.device = {}

        return Calibrator()


class TensorRTModel:
    backend = "tensorrt"

    def __init__(self, card: ModelCard, precision: str = "fp16", batch_range=(1, 1, 8), time_range=(1, 1, 1),
                 image_size=None, cache_dir=None, force_engine_update: bool = False,
                 calibration_samples: dict | None = None, log=None):
        import tensorrt as trt

        cudart = import_cudart()
        if precision not in PRECISIONS:
            raise ValueError(f"precision '{precision}' unknown; choose one of {PRECISIONS}")
        self._trt, self._cudart, self.card = trt, cudart, card
        self._log = log or logging.getLogger(__name__).warning
        self._buffers, self._stream, self._context, self._engine = {}, None, None, None
        self._logger = trt.Logger(trt.Logger.WARNING)
        onnx_path = verify_onnx_file(card)
        props = _check(cudart.cudaGetDeviceProperties(0))
        gpu = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
        cache_dir = pathlib.Path(cache_dir or DEFAULT_CACHE)
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.shapes = profile_shapes(card.inputs, batch_range, time_range, image_size)
        batches, calib_path, calib_id = self._calibration(precision, calibration_samples, cache_dir)
        self.platform = {"gpu_name": gpu, "compute_capability": f"{props.major}.{props.minor}",
                         "tensorrt_version": trt.__version__,
                         "cuda_version": cuda_version_text(_check(cudart.cudaRuntimeGetVersion())),
                         "l4t_version": l4t_version()}
        key = engine_key(card, precision, batch_range, self.platform, calib_id, time_range, image_size)
        self.engine_path = key.engine_path(cache_dir, card.name)
        timing_cache = cache_dir / "timing.cache"
        if force_engine_update or not self.engine_path.is_file():
            self._build(onnx_path, precision, timing_cache, batches, calib_path)
        else:
            self._log(f"TensorRT engine for {card.name}: cached {self.engine_path}")
        try:
            self._open(trt)
        except BaseException:
            self.release()
            raise

    def _calibration(self, precision, samples, cache_dir):
        """(batches, cache file, calibration id) for INT8; data is checked against the model."""
        if precision != "int8":
            return None, None, ""
        if samples:
            check_calibration_data(self.card, samples)
            batches = calibration_batches(self.card, samples, CALIBRATION_BATCH)
            if not batches:
                raise ValueError(f"int8 calibration needs at least {CALIBRATION_BATCH} samples")
            calib_id = data_digest(batches)
            return batches, calibration_cache_path(cache_dir, self.card, calib_id), calib_id
        cached = latest_calibration_cache(cache_dir, self.card)
        if cached is None:
            raise ValueError(f"tensorrt_precision int8 needs a calibration of '{self.card.name}' on real inputs: "
                             "run emo_engine --precision int8 --calibrate-images DIR (or --calibrate-audio DIR) first")
        return None, cached, cached.name.split(".")[-3]

    def _open(self, trt):
        cudart = self._cudart
        self._engine = trt.Runtime(self._logger).deserialize_cuda_engine(self.engine_path.read_bytes())
        if self._engine is None:
            raise ModelFileError(f"engine '{self.engine_path}' cannot be loaded on this GPU/TensorRT "
                                 "(built elsewhere or corrupt); rerun with force_engine_update:=true")
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        check_engine_io(self.card, {n: "INPUT" if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT
                                    else "OUTPUT" for n in names})
        engine = self._engine
        tensors = {mode: [(n, engine.get_tensor_shape(n), engine.get_tensor_dtype(n)) for n in names
                          if engine.get_tensor_mode(n) == mode] for mode in (trt.TensorIOMode.INPUT,
                                                                             trt.TensorIOMode.OUTPUT)}
        check_model_io(self.card, _declared(tensors[trt.TensorIOMode.INPUT]),
                       _declared(tensors[trt.TensorIOMode.OUTPUT]), str(self.engine_path), ordered_outputs=False)
        self._context = self._engine.create_execution_context()
        self._stream = _check(cudart.cudaStreamCreate())
        for name, _min, _opt, max_shape in self.shapes:
            self._alloc(name, max_shape)
            if not self._context.set_input_shape(name, max_shape):
                raise ModelFileError(f"engine '{self.engine_path}' refuses input '{name}' shape {max_shape}")
        for spec in self.card.outputs:   # output shapes at the profile maximum
            self._alloc(spec["name"], tuple(self._context.get_tensor_shape(spec["name"])))

    def _alloc(self, name, shape):
        dtype = numpy_dtype(str(self._engine.get_tensor_dtype(name)))
        nbytes = int(np.prod(shape)) * dtype.itemsize
        ptr = _check(self._cudart.cudaMalloc(nbytes))
        self._buffers[name] = (ptr, dtype, nbytes)
        if not self._context.set_tensor_address(name, ptr):
            raise ModelFileError(f"engine '{self.engine_path}' refuses the buffer of tensor '{name}'")

    def _build(self, onnx_path, precision, timing_cache, batches, calib_path):
        trt, started = self._trt, time.monotonic()
        self._log(f"building TensorRT engine for {self.card.name} ({precision}; about a minute per model on a "
                  f"Jetson) -> {self.engine_path}; equivalent: " + trtexec_command(
                      onnx_path, self.engine_path, self.shapes, precision, timing_cache, calib_path))
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)   # TensorRT 10: networks are always explicit-batch
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse(pathlib.Path(onnx_path).read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ModelFileError(f"TensorRT cannot parse '{onnx_path}': {errors}")
        # the card against the graph before a minute of building with profile shapes made from the card
        check_model_io(self.card, _declared((t.name, t.shape, t.dtype) for t in map(network.get_input,
                                                                                   range(network.num_inputs))),
                       _declared((t.name, t.shape, t.dtype) for t in map(network.get_output,
                                                                         range(network.num_outputs))),
                       str(onnx_path), ordered_outputs=False)
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        if precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if not tf32_allowed(precision):
            config.clear_flag(trt.BuilderFlag.TF32)   # on by default: fp32 would silently be TF32 on Orin
        profile = builder.create_optimization_profile()
        for name, min_shape, opt_shape, max_shape in self.shapes:
            profile.set_shape(name, min_shape, opt_shape, max_shape)
        config.add_optimization_profile(profile)
        calibrator = None
        if precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
            # Kept referenced until the build is done: the builder calls back into it.
            calibrator = _Calibrator(trt, self._cudart, batches or [], calib_path)
            config.int8_calibrator = calibrator
            calib_profile = builder.create_optimization_profile()
            for name, *fixed in calibration_shapes(self.card.inputs, CALIBRATION_BATCH):
                calib_profile.set_shape(name, *fixed)
            config.set_calibration_profile(calib_profile)
        with locked(timing_cache):
            blob = timing_cache.read_bytes() if timing_cache.is_file() else b""
        config.set_timing_cache(timing_cache_or_empty(config.create_timing_cache, blob, self._log),
                                ignore_mismatch=False)
        try:
            plan = builder.build_serialized_network(network, config)
        finally:
            if calibrator is not None:
                calibrator.free()
        if plan is None:
            raise ModelFileError(f"TensorRT failed to build an engine from '{onnx_path}' (see the log above)")
        atomic_write(self.engine_path, bytes(plan))
        with locked(timing_cache):
            atomic_write(timing_cache, bytes(config.get_timing_cache().serialize()))
        self._log(f"built {self.engine_path.name} in {time.monotonic() - started:.1f} s")

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cudart = self._cudart
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name, min_shape, _opt, max_shape in self.shapes:
            ptr, dtype, nbytes = self._buffers[name]
            x = np.ascontiguousarray(inputs[name], dtype)
            check_input_shape(name, x.shape, min_shape, max_shape)
            if not self._context.set_input_shape(name, x.shape):
                raise ValueError(f"engine '{self.engine_path.name}' refuses input '{name}' shape {x.shape}")
            _check(cudart.cudaMemcpyAsync(ptr, x.ctypes.data, x.nbytes, h2d, self._stream))
        if not self._context.execute_async_v3(self._stream):
            raise ModelRunError(f"TensorRT execution of '{self.card.name}' failed")
        outputs = {}
        for spec in self.card.outputs:
            ptr, dtype, _ = self._buffers[spec["name"]]
            out = np.empty(tuple(self._context.get_tensor_shape(spec["name"])), dtype)
            _check(cudart.cudaMemcpyAsync(out.ctypes.data, ptr, out.nbytes, d2h, self._stream))
            outputs[spec["name"]] = out
        _check(cudart.cudaStreamSynchronize(self._stream))
        return outputs   # in the engine's dtypes (e.g. float16 outputs stay float16)

    def release(self):
        """Free device buffers, stream, context and engine now (a node's cleanup), not at GC. Idempotent."""
        for ptr, _, _ in self._buffers.values():
            self._cudart.cudaFree(ptr)
        self._buffers = {}
        if self._stream is not None:
            self._cudart.cudaStreamDestroy(self._stream)
        self._stream = self._context = self._engine = None

    def __del__(self):
        if getattr(self, "_cudart", None) is not None:
            self.release()
