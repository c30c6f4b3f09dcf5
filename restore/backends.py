"""Inference backends: the network as a function N x 3 x H x W -> N x 3 x H x W, run by torch, onnxruntime or OpenVINO.

The two runtimes read the project's own ONNX export (restore/export.py), written once per weights and kept in a
cache keyed by the sha256 of the network's state dict and the export's version, so a second run starts without
exporting. OpenVINO and onnxruntime are optional (``pip install -e '.[openvino]'`` / ``'.[onnx]'``).

``auto`` picks OpenVINO where it is installed, else torch: OpenVINO was the fastest LightUNet path in both
precisions, and onnxruntime slower than torch's own fast path, so ``auto`` never chooses it (docs/performance.md,
"Backends and peers": ``python bench/run.py --peers``).

What the runtimes cannot do falls back to torch per call, never to an error: inputs smaller than the exported
graph's minimum side, and the per-layer InstanceNorm statistics that exact tiling of large images needs (those
hook into the torch modules, restore/image_norm.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from core.errors import ConfigError, ExperimentError

BACKENDS = ("torch", "onnxruntime", "openvino", "auto")
Network = Callable[[torch.Tensor], torch.Tensor]
OPENVINO_SHAPES_KEPT = 4
# Part of the cache key: raised whenever export_onnx changes the graph it writes, so no older export is reused
# (an export traced in channels_last ran slower in OpenVINO and failed in onnxruntime).
EXPORT_VERSION = "export2"


def cache_dir() -> Path:
    """Where exported models are kept: ``$LIGHTDEBLUR_CACHE``, else ``$XDG_CACHE_HOME/lightdeblur``, else
    ``~/.cache/lightdeblur``."""
    if os.environ.get("LIGHTDEBLUR_CACHE"):
        return Path(os.environ["LIGHTDEBLUR_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "lightdeblur"


def weights_sha256(model: nn.Module) -> str:
    """The sha256 of the network's class and state dict (names, shapes, dtypes and values): the same weights give
    the same key whether they came from a checkpoint, a bundled fp16 file or memory."""
    digest = hashlib.sha256(type(model).__qualname__.encode())
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        # flatten(): one axis of stride 1, whatever the memory format (channels_last included), so bytes are in
        # logical order and the byte view is allowed.
        values = tensor.detach().cpu().flatten()
        digest.update(values.view(torch.uint8).numpy().tobytes() if values.numel() else b"")
    return digest.hexdigest()


def export_folder(digest: str, directory: Path | None = None) -> Path:
    """The cache folder of the weights whose ``weights_sha256`` is ``digest``: their export, and what is made from
    it (the int8 model of restore/int8.py)."""
    return (cache_dir() if directory is None else directory) / f"{digest}-{EXPORT_VERSION}"


def cached_onnx(model: nn.Module, directory: Path | None = None) -> Path:
    """The ONNX file of ``model`` in the cache (``<sha256>-<EXPORT_VERSION>/model.onnx``, with the exporter's
    external weights file beside it), exported on first use into a temporary folder that is then renamed: an
    interrupted export never leaves a partial model under the real name, and two processes exporting at once both
    end with a whole one."""
    from .export import export_onnx

    final = export_folder(weights_sha256(model), directory)
    directory = final.parent
    path = final / "model.onnx"
    if path.is_file():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory, prefix=f".{final.name[:16]}-"))
    try:
        export_onnx(model, staging / "model.onnx")
        try:
            staging.rename(final)
        except OSError:  # another process finished first: its export is the same model
            if not path.is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def available(backend: str) -> bool:
    """torch always; a runtime where its package (named as the backend) imports."""
    if backend == "torch":
        return True
    try:
        __import__(backend)
    except ImportError:
        return False
    return True


def resolve_backend(backend: str, device: torch.device, dtype: torch.dtype) -> str:
    """The backend to run: ``auto`` -> openvino on the CPU where installed, else torch. An explicit runtime that is
    missing, or asked for what it cannot do, is a ``ConfigError`` naming the fix."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        return "openvino" if device.type == "cpu" and dtype != torch.float16 and available("openvino") else "torch"
    if backend == "torch":
        return backend
    if device.type != "cpu":
        raise ConfigError(f"the {backend} backend runs on the CPU; use --backend torch on {device.type}")
    if not available(backend):
        extra = "onnx" if backend == "onnxruntime" else "openvino"
        raise ConfigError(f"the {backend} backend is not installed: pip install -e '.[{extra}]'")
    if backend == "onnxruntime" and dtype != torch.float32:
        raise ConfigError("the onnxruntime backend runs fp32 only; use --precision fp32 or --backend openvino")
    return backend


def openvino_settings(dtype: torch.dtype, threads: int) -> dict[str, object]:
    """How the OpenVINO backend compiles the network: one request at a time on ``threads`` threads, in ``dtype``.
    OpenVINO's CPU plugin defaults to bf16 where the CPU has it: say fp32 explicitly unless bf16 was asked."""
    return {"INFERENCE_PRECISION_HINT": "bf16" if dtype == torch.bfloat16 else "f32",
            "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}


def openvino_runner(network, settings: dict[str, object]) -> Callable[[np.ndarray], np.ndarray]:
    """A function array -> array running an OpenVINO model (``openvino.Model``) with ``settings``."""
    import openvino

    core = openvino.Core()
    requests: dict[tuple[int, ...], object] = {}

    def run(array: np.ndarray):
        # One compiled model per input shape: the static graph measured faster than the dynamic one, most at small
        # inputs. A few shapes are kept: tiles, the last tile row, whole images.
        if array.shape not in requests:
            if len(requests) >= OPENVINO_SHAPES_KEPT:
                requests.pop(next(iter(requests)))
            shaped = network.clone()
            shaped.reshape({0: list(array.shape)})
            requests[array.shape] = core.compile_model(shaped, "CPU", settings).create_infer_request()
        return requests[array.shape].infer({0: array})[0].copy()

    return run


class RuntimeNetwork:
    """The network in onnxruntime or OpenVINO, with torch's own forward for what the runtime cannot take."""

    def __init__(self, backend: str, model: nn.Module, torch_network: Network, dtype: torch.dtype,
                 threads: int | None = None, directory: Path | None = None, model_path: Path | None = None):
        """``model_path``: a model file to run instead of the weights' ONNX export (the int8 model of
        restore/int8.py; ``dtype`` is then the precision of its float parts)."""
        self.backend = backend
        self.torch_network = torch_network
        self.min_size = getattr(model, "min_size", 1)
        threads = threads or torch.get_num_threads()
        try:
            path = model_path or cached_onnx(model, directory)
        except ExperimentError:  # already one line that names the problem
            raise
        except Exception as error:  # the exporter's many failure types: one line that names the network
            raise ExperimentError(f"could not export {type(model).__name__} to ONNX for {backend}: {error}") from None
        if backend == "openvino":
            import openvino

            self._run = openvino_runner(openvino.Core().read_model(str(path)), openvino_settings(dtype, threads))
        else:
            self._run = self._onnxruntime(path, threads)

    @staticmethod
    def _onnxruntime(path: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda array: session.run(None, {"blurred": array})[0]

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        if min(batch.shape[-2:]) < self.min_size:
            return self.torch_network(batch)
        array = np.ascontiguousarray(batch.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(np.asarray(self._run(array), dtype=np.float32))
