"""Deblur photos of any size with a trained generator (tiled, in bounded memory).

    python infer.py --input blurry.jpg --output restored.jpg                  # the bundled model, weights/
    python infer.py --input blurry.jpg --output restored.jpg --model gan      # the bundled GAN fine-tune
    python infer.py --input blurry.jpg --output restored.jpg --checkpoint experiments/RUN/checkpoints/best.pt
    python infer.py --input photos/ --output restored/ --checkpoint best.pt --compare
    python infer.py --input photos/ --output restored/ --checkpoint best.pt --compare --sharp sharp_photos/
    python infer.py --checkpoint best.pt --export-onnx deblur.onnx   # dynamic height and width, sides >= 32
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.errors import RESTORE_ERRORS
from restore.tiling_args import add_runtime_arguments, add_tiling_arguments


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, help="an image, or a folder (searched recursively)")
    parser.add_argument("--output", type=Path, help="an image path, or a folder (mirrors the input tree)")
    parser.add_argument("--checkpoint", type=Path, help="a checkpoint from train_gan.py (default: the bundled model)")
    parser.add_argument("--model", choices=("pretrain", "gan"), default="pretrain", help="which bundled model")
    parser.add_argument("--compare", action="store_true", help="also write <name>_compare.png: blurred | restored")
    parser.add_argument("--sharp", type=Path, help="folder of sharp counterparts (same relative paths) for --compare")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (inputs never)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda[:N] or mps")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                        help="channels_last memory format (default: on for CPU and CUDA, where it is faster)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the network: faster per image after tens of seconds of compiling")
    add_tiling_arguments(parser)
    add_runtime_arguments(parser)
    parser.add_argument("--tile-batch", type=int, default=None,
                        help="tiles per forward pass (default: 1 on the CPU, which bounds memory, 4 on GPUs)")
    parser.add_argument("--export-onnx", type=Path, metavar="PATH", help="write the model as ONNX and exit")
    args = parser.parse_args(argv)
    if args.export_onnx is None and (args.input is None or args.output is None):
        parser.error("--input and --output are required (unless --export-onnx)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tqdm import tqdm

    from core.cpu_allocator import reuse_freed_memory
    from core.device import pick_device
    from core.images import IMAGE_SUFFIXES
    from core.pipeline import run_overlapped
    from restore.inference import Restorer, default_checkpoint, load_generator, plan_jobs
    from restore.jobs import load_job, run_job, save_job
    from restore.tiling import MIN_USEFUL_TILE, aligned_tile

    reuse_freed_memory()  # large activations reuse pages instead of faulting in new ones: 2x on CPU

    if args.export_onnx is not None:
        return export(args)
    try:
        jobs = plan_jobs(args.input, args.output, args.compare, args.sharp if args.compare else None)
        device = pick_device(args.device)
        checkpoint = args.checkpoint or default_checkpoint(args.model)
        restore = Restorer(load_generator(checkpoint, device), device, args.tile, args.overlap, args.tile_batch,
                           args.precision, args.channels_last, args.compile, args.norm_stats, args.backend)
    except RESTORE_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.tile and args.tile < MIN_USEFUL_TILE:
        side = aligned_tile(args.tile, restore.multiple, restore.min_size)
        print(f"note: --tile {args.tile} runs {side} px tiles; under {MIN_USEFUL_TILE} px every tile sees too little "
              "of the blur around it and large images need thousands of passes (use 256 or more, or 0 for whole "
              "images)", file=sys.stderr)

    single = args.input.is_file()
    if not single:
        others = sorted(path.name for path in args.input.rglob("*") if path.is_file() and not path.name.startswith(".")
                        and path.suffix.lower() not in IMAGE_SUFFIXES)
        if others:  # an animated GIF, a RAW file, notes: counted and named, never silently passed over
            named = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            print(f"note: {len(others)} file(s) in {args.input} are not images infer.py reads "
                  f"({', '.join(IMAGE_SUFFIXES)}) and were left alone: {named}", file=sys.stderr)
    todo = [job for job in jobs if args.overwrite or not any(output.exists() for output in job.outputs)]
    skipped = len(jobs) - len(todo)
    if single and skipped:
        existing = next(output for output in jobs[0].outputs if output.exists())
        print(f"error: output {existing} exists; pass --overwrite to replace it", file=sys.stderr)
        return 2
    done, failed = 0, []
    progress = tqdm(total=len(todo), desc="deblurring", unit="image", disable=single or not sys.stderr.isatty())

    def finished(job) -> None:
        nonlocal done
        done += 1
        progress.update()

    def fail(job, error) -> None:  # bad image files (DataError) among them; a single image stops at its error
        failed.append((job.source, error))
        if not single:
            print(f"skipped: {error}", file=sys.stderr)
        progress.update()

    start = time.monotonic()
    try:
        # The next image is decoded and the previous one written while the network runs (core/pipeline.py).
        run_overlapped(todo, lambda job: load_job(job, args.compare, args.sharp),
                       lambda job, loaded: run_job(job, loaded, restore),
                       lambda job, loaded, restored: save_job(job, loaded, restored, args.compare), RESTORE_ERRORS,
                       fail, finished)
        progress.close()
        if single and failed:
            print(f"error: {failed[0][1]}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:  # Ctrl-C between or inside images: what was written is whole (atomic writes)
        print(f"interrupted: {done} restored, {skipped} kept, {len(failed)} failed of {len(jobs)} images; every "
              "output written is complete", file=sys.stderr)
        return 130
    elapsed = time.monotonic() - start
    ran = (f"{restore.last_backend}{' streamed in row bands' if restore.last_streamed else ''}, "
           f"{str(restore.dtype).removeprefix('torch.')} on {restore.device.type}")
    if single:
        panel = f" and {jobs[0].compare} (blurred | restored{' | sharp' if args.sharp else ''})" if args.compare else ""
        print(f"wrote {jobs[0].target}{panel} ({elapsed:.1f} s; {ran})")
        return 0
    rate = f", {done / elapsed:.2f} images/s" if done and elapsed > 0 else ""
    print(f"{done} restored, {skipped} kept (output exists; --overwrite replaces), {len(failed)} failed "
          f"of {len(jobs)} images in {elapsed:.1f} s{rate} ({ran}) -> {args.output}")
    return 1 if failed else 0


def export(args: argparse.Namespace) -> int:
    import torch

    from core.errors import os_error_line
    from restore.export import check_export_paths, export_onnx
    from restore.inference import default_checkpoint, load_generator

    try:
        checkpoint = args.checkpoint or default_checkpoint(args.model)
        check_export_paths(args.export_onnx, checkpoint, args.overwrite)
        minimum = export_onnx(load_generator(checkpoint, torch.device("cpu")), args.export_onnx)
    except RESTORE_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the export's folder is a file, or the disk is read-only or full
        print(f"error: {os_error_line(error)}", file=sys.stderr)
        return 2
    print(f"wrote {args.export_onnx}: input 'blurred' N x 3 x H x W in [0, 1], H and W >= {minimum}; "
          "output 'restored', same shape")
    return 0


def interruptible(main):
    """``main`` with Ctrl-C during set-up (before any image) as one line and exit 130, not a traceback."""
    try:
        return main()
    except KeyboardInterrupt:
        print("interrupted before any image was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(interruptible(main))
