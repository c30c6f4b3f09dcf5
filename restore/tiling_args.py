"""The tiling, precision and backend options infer.py and evaluate.py share (no torch import: ``--help`` answers
at once)."""

from __future__ import annotations

import argparse


def tile_size(text: str) -> int | None:
    """``auto`` (None: restore.inference.auto_tile decides per image) or a tile size in pixels (0: the whole image)."""
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be auto or a whole number of pixels, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be auto, 0 or a positive number of pixels, got {value}")
    return value


def add_tiling_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tile", type=tile_size, default=None,
                        help="tile size in pixels; 0 = whole image at once; default auto: the whole image on the "
                        "CPU up to 3 megapixels, 512 px tiles beyond it and on GPUs")
    parser.add_argument("--overlap", type=int, default=64, help="overlap between neighbouring tiles in pixels")
    parser.add_argument("--norm-stats", choices=("image", "tile"), default="image",
                        help="InstanceNorm statistics of tiles: the whole image's (exact, the default; about 12x "
                        "the time of one tiled pass) or each tile's own (fast, approximate)")


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", default="auto",
                        help="auto (fp16 on CUDA; on a CPU bf16 where it has native bf16, else fp32; int8 where "
                        "python -m release.int8 made and gated an int8 model that ran faster), fp32, bf16, fp16, int8 "
                        "(the CPU, OpenVINO)")
    parser.add_argument("--backend", default="torch",
                        help="torch, onnxruntime, openvino, or auto (openvino where installed, else torch); the "
                        "runtimes load an ONNX export cached per weights (restore/backends.py)")
