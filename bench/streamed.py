"""Exact results of the InstanceNorm LightUNet on large images: streamed in row bands (restore/streamed.py) beside
one whole-image pass (where it fits in memory) and one tiled pass with each tile's own statistics (the fast,
inexact option). Each figure comes from a fresh process: seconds (median of the repeats after a warm-up on a small
image) and its peak resident set size.

    python bench/run.py --sections streamed --checkpoint weights/light_unet_pretrain.pt
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# (height, width, name). The whole-image pass of a larger image runs only where this machine's available memory
# holds it (its need is scaled from the first size's peak by the pixels, plus a tenth).
SIZES = ((1080, 1920, "1920x1080"), (2160, 3840, "3840x2160"), (3000, 4000, "4000x3000 (12 MP)"))
SMALL_PIXELS = 3_000_000  # up to this, the median of --repeats runs; above it one run


def available_gib() -> float:
    """MemAvailable (free memory plus what the kernel can reclaim from its caches), or the free pages."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30

CHILD = """
import json, resource, statistics, sys, time, torch
sys.path.insert(0, {root!r})
from bench.inference import make_model
from restore.inference import Restorer
device = torch.device("cpu")
how = {how!r}
stats = "tile" if how == "tiled" else "image"
options = dict(tile=0) if how == "whole" else dict(tile=512, overlap=64, norm_statistics=stats)
restore = Restorer(make_model({checkpoint!r}, device), device, precision={precision!r}, **options)
restore(torch.rand(3, 256, 256))
image = torch.rand(3, {height}, {width})
seconds = []
for _ in range({repeats}):
    start = time.perf_counter()
    restore(image)
    seconds.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({{"seconds": statistics.median(seconds), "peak_gib": peak, "streamed": restore.last_streamed,
                  "precision": str(restore.dtype).removeprefix("torch.")}}))
"""


def run_child(how: str, height: int, width: int, checkpoint: str | None, precision: str, repeats: int) -> dict:
    code = CHILD.format(root=str(Path(__file__).resolve().parents[1]), how=how, checkpoint=checkpoint,
                        precision=precision, height=height, width=width, repeats=repeats)
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(output.splitlines()[-1])


def bench_streamed(table, args, precision: str = "auto") -> None:
    whole_gib_per_pixel = None
    for height, width, name in SIZES:
        repeats = args.repeats if height * width <= SMALL_PIXELS else 1
        results = {}
        for how in ("whole", "streamed", "tiled"):
            if how == "whole" and whole_gib_per_pixel is not None:
                need = 1.1 * whole_gib_per_pixel * height * width
                if need > 0.8 * available_gib():
                    table.add("streamed", f"{name} whole image, one pass", float("nan"), "s",
                              f"not run: needs about {need:.1f} GiB, {available_gib():.1f} GiB available")
                    continue
            results[how] = run_child(how, height, width, args.checkpoint, precision, repeats)
            if how == "whole" and whole_gib_per_pixel is None:
                whole_gib_per_pixel = results[how]["peak_gib"] / (height * width)
        streamed = results["streamed"]
        for how, label in (("whole", "whole image, one pass (exact)"),
                           ("streamed", "streamed in row bands (exact)"),
                           ("tiled", "512/64 tiles, each its own statistics (one pass, inexact)")):
            if how not in results:
                continue
            result = results[how]
            ratio = f"; streamed / this: {streamed['seconds'] / result['seconds']:.2f}x" if how != "streamed" else ""
            table.add("streamed", f"{name} {label}, {result['precision']}", result["seconds"], "s",
                      f"peak RSS {result['peak_gib']:.2f} GiB, median of {repeats}, fresh process{ratio}")
