"""Inference speed and memory of the generator: megapixels per second at 1280x720, peak memory at 3840x2160.

    python bench/inference.py                        # LightUNet-48, CPU, fp32 and bf16
    python bench/inference.py --checkpoint best.pt --device cuda --json bench/inference.json
    python bench/inference.py --precisions fp32 bf16 --size 256 256 --skip-4k --channels-last

Speed does not depend on the weights, so without --checkpoint a LightUNet-48 with a random (non-identity) head is
timed. Each figure is the median of --repeats runs after a warm-up run. Peak memory is the peak resident set size
(CPU) or peak allocated CUDA memory of a fresh child process that runs one tiled 3840x2160 image, so earlier
measurements cannot inflate it. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.timing import median_seconds  # noqa: E402
from nets import build_network  # noqa: E402
from restore.inference import Restorer, load_generator  # noqa: E402


def make_model(checkpoint: str | None, device: torch.device) -> torch.nn.Module:
    if checkpoint:
        return load_generator(Path(checkpoint), device)
    torch.manual_seed(0)
    model = build_network("light_unet", start_filters=48)
    # Away from the identity init, so that differences between execution paths show in the output.
    torch.nn.init.normal_(model.head.weight, std=0.02)
    return model.eval().to(device)


def time_restore(restore: Restorer, height: int, width: int, repeats: int) -> float:
    image = torch.rand(3, height, width)
    return median_seconds(lambda: restore(image), repeats, restore.device)


def peak_memory_child(args: argparse.Namespace, precision: str) -> tuple[float, float]:
    """Peak memory in GiB of a fresh process running one tiled 3840x2160 restoration."""
    code = f"""
import resource, sys, time, torch
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from bench.inference import make_model
from restore.inference import Restorer
if {getattr(args, "reuse_memory", False)!r}:
    from core.cpu_allocator import reuse_freed_memory
    reuse_freed_memory()
device = torch.device({args.device!r})
restore = Restorer(make_model({args.checkpoint!r}, device), device, {args.tile}, {args.overlap}, {args.tile_batch},
                   {precision!r}, {args.channels_last!r})
start = time.perf_counter()
restore(torch.rand(3, 2160, 3840))
seconds = time.perf_counter() - start
if device.type == "cuda":
    peak = torch.cuda.max_memory_allocated() / 2**30
else:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(peak, seconds)
"""
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    peak, seconds = map(float, output.split())
    return peak, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", nargs="+", help="default: fp32 bf16 on CPU, fp32 fp16 on CUDA")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--tile-batch", type=int, default=None, help="default: the Restorer's (1 on CPU, 4 on GPUs)")
    parser.add_argument("--size", nargs=2, type=int, default=[720, 1280], metavar=("H", "W"), help="timed image size")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--skip-4k", action="store_true", help="skip the 3840x2160 peak-memory run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    device = torch.device(args.device)
    precisions = args.precisions or (["fp32", "fp16"] if device.type == "cuda" else ["fp32", "bf16"])
    model = make_model(args.checkpoint, device)
    height, width = args.size
    megapixels = height * width / 1e6
    rows = []
    for precision in precisions:
        whole = Restorer(model, device, 0, 0, 1, precision, args.channels_last)
        tiled = Restorer(model, device, args.tile, args.overlap, args.tile_batch, precision, args.channels_last)
        seconds_whole = time_restore(whole, height, width, args.repeats)
        seconds_tiled = time_restore(tiled, height, width, args.repeats)
        peak, seconds_4k = (float("nan"), float("nan")) if args.skip_4k else peak_memory_child(args, precision)
        rows.append({
            "precision": precision,
            "s_whole": seconds_whole,
            "mp_per_s_whole": megapixels / seconds_whole,
            "s_tiled": seconds_tiled,
            "mp_per_s_tiled": megapixels / seconds_tiled,
            "s_3840x2160_tiled": seconds_4k,
            "peak_gib_3840x2160_tiled": peak,
        })
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    layout = "channels_last" if args.channels_last else "contiguous"
    print(f"device: {name}; torch {torch.__version__}; {layout}; tile {args.tile}, overlap {args.overlap}; "
          f"median of {args.repeats} after a warm-up")
    size = f"{width}x{height}"
    print(f"| precision | {size} whole (s) | MP/s | {size} tiled (s) | MP/s | 3840x2160 tiled (s) | "
          "peak memory (GiB) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['precision']} | {r['s_whole']:.2f} | {r['mp_per_s_whole']:.3f} | {r['s_tiled']:.2f} | "
              f"{r['mp_per_s_tiled']:.3f} | {r['s_3840x2160_tiled']:.1f} | {r['peak_gib_3840x2160_tiled']:.2f} |")
    if args.json:
        record = {"device": name, "torch": torch.__version__, "layout": layout, "size": args.size, "rows": rows}
        args.json.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
