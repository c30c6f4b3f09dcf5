"""ONNX export of a generator with dynamic height and width."""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import ExperimentError
from nets.residual_unet import ResidualUNet


class PaddedForExport(nn.Module):
    """The generator with its any-size padding written as one reflect pad of symbolic size.

    The eager model pads in a Python loop (several rounds for tiny images), which export would freeze to the
    example's shape. For sides >= ``min_size`` one reflect pad of ``(-side) % 2**levels`` is always valid, so the
    exported graph takes any height and width from ``min_size`` (32 for 4 levels) upwards.
    """

    def __init__(self, network: ResidualUNet):
        super().__init__()
        self.network = network
        self.multiple = 2**network.levels

    def forward(self, blurred: torch.Tensor) -> torch.Tensor:
        height, width = blurred.shape[-2:]
        padded = F.pad(blurred, (0, (-width) % self.multiple, 0, (-height) % self.multiple), mode="reflect")
        return self.network.add_residual(blurred, self.network.residual(padded))


def export_files(path: Path) -> list[Path]:
    """What an export to ``path`` writes: the graph, and its weights as external data beside it."""
    return [path, path.with_name(path.name + ".data")]


def check_export_paths(path: Path, checkpoint: Path, overwrite: bool) -> None:
    """An ``ExperimentError`` when the export would replace the checkpoint it reads (under any name, links too),
    or an existing file without ``overwrite``."""
    for output in export_files(path):
        if output.exists() and checkpoint.exists() and os.path.samefile(output, checkpoint):
            raise ExperimentError(f"--export-onnx {path} would replace the checkpoint {checkpoint} it exports; "
                                  "choose another path")
        if output.exists() and not overwrite:
            raise ExperimentError(f"{output} exists; pass --overwrite to replace it")
        if output.is_dir():
            raise ExperimentError(f"{output} is a folder; choose a file path for --export-onnx")


def export_onnx(network: nn.Module, path: Path, opset: int = 18) -> int:
    """Write ``network`` as ONNX (input ``blurred``, output ``restored``: N x 3 x H x W in [0, 1]).

    Returns the smallest height/width the exported graph accepts.
    """
    if not isinstance(network, ResidualUNet):
        raise ExperimentError(f"ONNX export supports the U-Net generators, not {type(network).__name__}")
    try:
        import onnxscript  # noqa: F401  (torch's exporter needs it; say so before torch does)
    except ImportError:
        raise ExperimentError("ONNX export needs the onnx and onnxscript packages: pip install -e '.[onnx]'") from None
    # A copy in NCHW: a channels_last network exports a graph whose PixelShuffle fails at run time (onnxruntime).
    wrapper = PaddedForExport(copy.deepcopy(network).cpu().to(memory_format=torch.contiguous_format)).eval()
    minimum = network.min_size
    example = torch.rand(1, 3, minimum * 2, minimum * 3)
    height = torch.export.Dim("height", min=minimum, max=16384)
    width = torch.export.Dim("width", min=minimum, max=16384)
    batch = torch.export.Dim("batch", min=1, max=256)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written in a temporary folder beside the target and moved into place once complete, so a failed export
    # leaves the user's files as they were; the external-data file keeps the name the graph refers to.
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        _export(wrapper, example, staging / path.name, batch, height, width, opset)
        for written, final in zip(export_files(staging / path.name), export_files(path)):
            if written.exists():
                os.replace(written, final)
            elif final.exists():
                final.unlink()  # an older export's weights, which the new graph does not use
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return minimum


def _export(wrapper: nn.Module, example: torch.Tensor, path: Path, batch, height, width, opset: int) -> None:
    torch.onnx.export(
        wrapper,
        (example,),
        str(path),
        input_names=["blurred"],
        output_names=["restored"],
        dynamic_shapes={"blurred": {0: batch, 2: height, 3: width}},
        opset_version=opset,
        dynamo=True,
    )
