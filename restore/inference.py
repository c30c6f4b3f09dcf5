"""Restoring photos with a trained generator: model loading, precision, tiling, and the input -> output plan."""

from __future__ import annotations

import contextlib
import functools
import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from core.checkpoint import best_checkpoints_newest_first, load_checkpoint, verify
from core.cpu_features import native_bf16_flags
from core.errors import ConfigError, DataError, ExperimentError
from core.images import IMAGE_SUFFIXES, image_files, list_images

from .backends import RuntimeNetwork, available, resolve_backend
from .bundled import bundled_path
from .generator import generator_from_checkpoint
from .image_norm import ImageStatistics
from .streamed import NotStreamable, StreamedNetwork
from .tiling import NORM_STATISTICS, tiled_apply, tiling_problem

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")


def default_checkpoint(model: str, experiments: Path = Path("experiments")) -> Path:
    """The bundled model file; says clearly when none is bundled (and where a local run's best.pt is)."""
    path = bundled_path(model)
    if path.is_file():
        verify(path)
        return path
    local = best_checkpoints_newest_first(experiments)
    hint = f"; your newest run is {local[0]}" if local else "; train one with `python train_gan.py --pretrain`"
    raise ExperimentError(
        f"no trained {model} model is bundled with this project yet ({path} is missing): pass --checkpoint{hint}"
    )


def load_generator(path: Path, device: torch.device, state: dict | None = None) -> nn.Module:
    """The generator a checkpoint holds, in eval mode on ``device``; ``state`` is the file's already loaded state,
    for callers that read more of it."""
    state = load_checkpoint(path) if state is None else state
    return generator_from_checkpoint(state, path).eval().to(device)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """``auto``: fp16 autocast on CUDA; on a CPU, bf16 autocast where the CPU has native bf16 (AVX512-BF16 or AMX,
    read from its flags), else fp32; fp32 on other devices. bf16 needs a CPU or GPU that supports it.

    The rule allows bf16 to cost at most 0.05 dB of benchmark PSNR; what it measured with the shipped files, and its
    speed, are in docs/performance.md (``python bench/run.py --sections precision``). ``--precision fp32`` keeps
    fp32 everywhere.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "int8":  # the model itself is chosen and checked by the Restorer (restore/int8.py)
        if device.type != "cpu":
            raise ConfigError(f"int8 inference runs on the CPU (OpenVINO), not {device.type}; use fp16 or bf16")
        return torch.int8
    if precision == "auto":
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if device.type == "cpu" and native_bf16_flags() else torch.float32
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"fp16 inference needs a CUDA device, not {device.type}; use bf16 or fp32")
    if precision == "bf16" and device.type == "cpu" and not torch.backends.mkldnn.is_available():
        raise ConfigError("bf16 on this CPU is not supported by torch (no oneDNN); use fp32")
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


# On the CPU the whole image is both the fastest and the exact path, but its peak memory grows with the pixels
# (docs/performance.md and docs/inference.md give the measured figures): up to 3 megapixels the whole image runs at
# once; beyond it, and on accelerators (whose memory is what tiles bound), images are tiled.
WHOLE_IMAGE_PIXELS_ON_CPU = 3_000_000
DEFAULT_TILE = 512


def auto_tile(device: torch.device, height: int, width: int) -> int:
    """The tile size ``--tile auto`` uses: 0 (the whole image) on the CPU up to 3 megapixels, else ``DEFAULT_TILE``."""
    return 0 if device.type == "cpu" and height * width <= WHOLE_IMAGE_PIXELS_ON_CPU else DEFAULT_TILE


def default_tile_batch(device: torch.device) -> int:
    """Tiles per forward pass: 1 on the CPU, where a batch only multiplies the activations' memory (3840x2160 at
    512/64: peak 1.14 GiB with 1 tile, 3.22 GiB with 4, and no faster: bench/run.py --sections tiled-4k), 4 on
    accelerators, whose kernels a single tile does not fill."""
    return 1 if device.type == "cpu" else 4


class Restorer:
    """Callable 3 x H x W [0, 1] image -> restored 3 x H x W [0, 1] image, on CPU memory, tiled on ``device``."""

    def __init__(
        self,
        model: nn.Module,
        device: torch.device,
        tile: int | None = None,
        overlap: int = 64,
        tile_batch: int | None = None,
        precision: str = "auto",
        channels_last: bool | None = None,
        compile: bool = False,
        norm_statistics: str = "image",
        backend: str = "torch",
        stream: bool = True,
    ):
        """``channels_last=None`` picks it on CPU and CUDA, where it is faster (bench/inference.py); ``compile``
        runs the network through ``torch.compile`` (inductor, frozen weights): a further gain on CPU for many
        images of one size, after a compilation of tens of seconds (and again for each new tile shape).
        ``tile=None`` picks ``auto_tile``'s choice per image, ``tile_batch=None`` ``default_tile_batch``'s.
        ``norm_statistics``: how tiles of an InstanceNorm network are normalised: "image" (the whole image's
        statistics, measured tile by tile before the output pass: what the whole image gives, at about 12x the time
        of one tiled pass) or "tile" (each tile its own: fast, but off by a quarter of the model's change;
        docs/inference.md, "Tiled inference and InstanceNorm").
        ``backend``: torch, onnxruntime, openvino or auto (restore/backends.py); a runtime backend hands back to
        torch where it cannot run an input (``last_backend`` says which ran the latest image).
        ``stream``: on the CPU, give an InstanceNorm network's exact whole-image result for an image larger than a
        tile by running it once, operation by operation, in row bands (restore/streamed.py: about one pass, memory
        bounded by the bands) instead of measuring the statistics with extra tiled passes. Networks it cannot
        trace, and other devices, take the passes."""
        if norm_statistics not in NORM_STATISTICS:
            raise ConfigError(f"norm statistics must be one of {', '.join(NORM_STATISTICS)}, got {norm_statistics!r}")
        if tile_batch is None:
            tile_batch = default_tile_batch(device)
        if (tile is not None and tile < 0) or tile_batch < 1 or (tile and not 0 <= overlap < tile):
            raise ConfigError(f"need tile >= 0, tile_batch >= 1, 0 <= overlap < tile; got {tile}, {tile_batch}, "
                              f"{overlap}")
        if channels_last is None:
            channels_last = device.type in ("cpu", "cuda")
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.eval().to(device, memory_format=self.memory_format)
        self.forward = torch.compile(self.model, options={"freezing": True}) if compile else self.model
        self.device = device
        self.tile, self.overlap, self.tile_batch = tile, overlap, tile_batch
        self.statistics = ImageStatistics(self.model) if norm_statistics == "image" else None
        self.multiple = getattr(self.model, "size_multiple", 1)
        self.min_size = getattr(self.model, "min_size", 0)
        if tile and tiling_problem(tile, overlap, self.multiple, self.min_size):
            raise ConfigError(tiling_problem(tile, overlap, self.multiple, self.min_size))
        # onnxruntime runs fp32 only: there `auto` means fp32, an explicit bf16 is refused by resolve_backend.
        self.dtype = torch.float32 if precision == "auto" and backend == "onnxruntime" else resolve_precision(
            precision, device)
        self.stream = stream
        self.runtime = None
        faster_int8 = self._auto_int8(backend) if precision == "auto" else None
        if self.dtype == torch.int8 or faster_int8 is not None:
            self._set_up_int8(backend, faster_int8)
        else:
            self.backend = resolve_backend(backend, device, self.dtype)
        if compile and self.backend != "torch":
            raise ConfigError(f"--compile is for the torch backend; the {self.backend} backend compiles by itself")
        if self.backend != "torch" and self.runtime is None:
            try:
                self.runtime = RuntimeNetwork(self.backend, self.model, self.network, self.dtype)
            except ExperimentError:
                if backend != "auto":
                    raise
                self.backend = "torch"  # auto: a network the exporter cannot take runs in torch
        self.last_backend = self.backend
        self.last_streamed = False  # whether the latest image ran streamed (exact, in row bands)

    def _auto_int8(self, backend: str) -> tuple[Path, dict] | None:
        """``--precision auto`` takes int8 where this machine's int8 model of these weights passed its quality gate
        and measured faster than the float precision auto picks (restore/int8.py): its (.xml, record), else None."""
        if backend not in ("auto", "openvino") or self.device.type != "cpu" or not available("openvino"):
            return None
        from .int8 import faster_int8

        return faster_int8(self.model, self.dtype)

    def _set_up_int8(self, backend: str, usable: tuple[Path, dict] | None = None) -> None:
        """The int8 model that ``python -m release.int8`` made and measured for these weights, run by OpenVINO;
        refused in one line where there is none, its gate failed, or its record does not match. OpenVINO is the one
        runtime here with an int8 path, so int8 runs there with the default backend (torch) too. ``usable``: the
        (.xml, record) ``--precision auto`` checked already."""
        from .int8 import FLOAT_DTYPES, usable_int8

        if usable is None:
            if backend not in ("torch", "auto", "openvino"):
                raise ConfigError(f"int8 runs on the openvino backend, not {backend}; use --backend openvino or auto")
            if not available("openvino"):
                raise ConfigError("int8 needs the openvino backend: pip install -e '.[int8]'")
            xml, record, reason = usable_int8(self.model)
            if xml is None:
                raise ConfigError(reason)
        else:
            xml, record = usable
        self.dtype, self.backend = torch.int8, "openvino"
        # Its float parts run in the precision its gate was measured with.
        self.runtime = RuntimeNetwork("openvino", self.model, self._no_int8_fallback,
                                      FLOAT_DTYPES[record["float_precision"]], model_path=xml)

    def _no_int8_fallback(self, batch: torch.Tensor) -> torch.Tensor:
        raise ConfigError(f"int8 cannot run a {batch.shape[-2]}x{batch.shape[-1]} input (smaller than the network's "
                          f"{self.min_size} px minimum); use --precision bf16 or fp32")

    @functools.cached_property
    def streamed(self) -> StreamedNetwork | None:
        """The streamed executor of an InstanceNorm network on the CPU, traced the first time an image needs it
        (None where streaming is off, on other devices, or for a network it cannot trace)."""
        if not (self.stream and self.statistics and self.device.type == "cpu"):
            return None
        try:
            return StreamedNetwork(self.model, dtype=self.dtype)
        except NotStreamable:
            return None

    def _autocast(self):
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    @torch.no_grad()
    def network(self, batch: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self.forward(batch.contiguous(memory_format=self.memory_format)).float()

    def __call__(self, image: torch.Tensor, progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """``progress(done, total)``: called after every batch of tiles (see ``tiled_apply``)."""
        tile = auto_tile(self.device, *image.shape[-2:]) if self.tile is None else self.tile
        # Exact tiles of an InstanceNorm network need the whole image's statistics: streamed in torch where it can,
        # else measured through the torch modules' hooks. Either way torch runs it.
        needs_torch = self.statistics and tile > 0 and max(image.shape[-2:]) > tile
        if needs_torch and self.dtype == torch.int8:
            raise ConfigError(f"int8 runs whole images and independently normalised tiles only; this "
                              f"{image.shape[-1]}x{image.shape[-2]} image needs exact tiles (torch): use --tile 0, "
                              "--norm-stats tile, or --precision bf16 or fp32")
        self.last_streamed = bool(needs_torch and self.streamed is not None)
        if self.last_streamed:
            self.last_backend = "torch"
            return self.streamed(image[None], progress)[0].clamp(0.0, 1.0)
        network = self.network if self.runtime is None or needs_torch else self.runtime
        self.last_backend = "torch" if network is not self.runtime else self.backend
        restored = tiled_apply(network, image[None], tile, self.overlap, self.tile_batch, self.device,
                               self.multiple, self.min_size, self.statistics, progress)
        return restored[0].clamp(0.0, 1.0)


@dataclass
class Job:
    source: Path
    target: Path
    relative: Path  # the source's path below the input folder (its name, for a single file)
    compare: Path | None = None  # the blurred | restored (| sharp) panel, when asked for

    @property
    def outputs(self) -> list[Path]:
        return [self.target] + ([self.compare] if self.compare is not None else [])


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file: equal for one file under any name (symbolic or hard links too)."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def plan_jobs(input_path: Path, output_path: Path, compare: bool = False, sharp: Path | None = None) -> list[Job]:
    """Map inputs to outputs: one file to a file (or into a folder), or a folder tree to a mirrored folder tree;
    with ``compare``, each output also gets its ``<stem>_compare.png`` panel.

    Refuses any plan that would write over an input (by any name: links count), or put outputs inside the input
    folder (a rerun would then take them for inputs). The files of the ``sharp`` folder (``--sharp``) are inputs
    too: ground truth is never written over, whatever ``--overwrite`` says.
    """
    if not input_path.exists():
        raise ExperimentError(f"input {input_path} does not exist")
    if not input_path.is_file() and not input_path.is_dir():
        raise ExperimentError(f"input {input_path} is neither an image file nor a folder (a pipe or device?)")
    if input_path.is_file():
        target = output_path / input_path.name if output_path.is_dir() else output_path
        if target.suffix.lower() not in IMAGE_SUFFIXES:
            raise ExperimentError(f"output {target} needs an image suffix ({', '.join(IMAGE_SUFFIXES)})")
        jobs = [Job(input_path, target, Path(input_path.name))]
    else:
        jobs = _folder_jobs(input_path, output_path)
    if compare:
        for job in jobs:
            job.compare = job.target.with_name(f"{job.target.stem}_compare.png")
    inputs = [job.source for job in jobs]
    if sharp is not None and sharp.is_dir():
        target_root = (output_path if not input_path.is_file() else jobs[0].target.parent).resolve()
        if target_root == sharp.resolve() or sharp.resolve() in target_root.parents:
            raise ExperimentError(f"output {output_path} is inside the --sharp folder {sharp}; choose another")
        inputs += image_files(sharp)
    sources = {_identity(path): path for path in inputs}
    resolved = {path.resolve(): path for path in inputs}
    written: dict[Path, Path] = {}
    for job in jobs:
        for output in job.outputs:
            clash = resolved.get(output.resolve()) or sources.get(_identity(output) or (-1, -1))
            if clash is not None:
                raise ExperimentError(f"output {output} is the input file {clash}; choose another output path")
            other = written.setdefault(output.resolve(), job.source)
            if other != job.source:  # e.g. a_compare.png is both an input's output and a.png's panel
                raise ExperimentError(f"{other} and {job.source} would both be written to {output}; rename one of "
                                      "them (or drop --compare)")
    return jobs


def sharp_counterpart(sharp_root: Path, relative: Path) -> Path | None:
    """The sharp image of input ``relative`` below ``sharp_root``: the same relative path, else the one image file
    with the same stem in the same folder (``x.jpg`` pairs with ``x.png``); two candidates are an error."""
    exact = sharp_root / relative
    if exact.is_file():
        return exact
    folder = exact.parent
    found = sorted(path for path in folder.glob(f"{glob.escape(relative.stem)}.*")
                   if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()) if folder.is_dir() else []
    if len(found) > 1:
        names = ", ".join(path.name for path in found)
        raise DataError(f"{len(found)} sharp counterparts of {relative} in {folder} ({names}); keep one")
    return found[0] if found else None


def _folder_jobs(input_path: Path, output_path: Path) -> list[Job]:
    if output_path.exists() and not output_path.is_dir():
        raise ExperimentError(f"input {input_path} is a folder, so output {output_path} must be a folder too")
    source_root, target_root = input_path.resolve(), output_path.resolve()
    if target_root == source_root or source_root in target_root.parents:
        raise ExperimentError(f"output folder {output_path} is inside input folder {input_path}; choose another")
    root = input_path.expanduser()  # as list_images reads it
    return [Job(p, output_path / p.relative_to(root), p.relative_to(root)) for p in list_images(root)]
