"""Which glibc allocator setting serves LightUNet inference best on the CPU? Page faults, system time, wall time
and peak memory per setting, each in a fresh process (a mallopt setting cannot be undone).

    python bench/allocator.py                          # 1280x720 and 3840x2160, 3 images each
    python bench/allocator.py --sizes 720x1280 --images 5 --checkpoint weights/light_unet_pretrain.pt

Settings: "glibc" (its defaults: large blocks are fresh mmaps, returned on free), and core/cpu_allocator.py's
"keep" (large blocks from the heap, never trimmed) and "trim-1GiB" (trimmed when 1 GiB is free at its top).
Figures are per image after the first (the warm ones), medians; faults are minor page faults.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, statistics, sys, time
sys.path.insert(0, {root!r})
import torch
from core.cpu_allocator import reuse_freed_memory
setting, height, width, images, checkpoint = {setting!r}, {height}, {width}, {images}, {checkpoint!r}
if setting != "glibc":
    assert reuse_freed_memory(setting)
from bench.inference import make_model
from restore.inference import Restorer
torch.set_num_threads({threads})
device = torch.device("cpu")
restore = Restorer(make_model(checkpoint, device), device, 0)
image = torch.rand(3, height, width)
rows = []
for _ in range(images):
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    restore(image)
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - start
    rows.append((after.ru_minflt - before.ru_minflt, after.ru_stime - before.ru_stime, wall))
warm = rows[1:] or rows
print(json.dumps({{"faults": statistics.median(r[0] for r in warm), "system_s": statistics.median(r[1] for r in warm),
                  "wall_s": statistics.median(r[2] for r in warm),
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}}))
"""


def measure(setting: str, height: int, width: int, images: int, checkpoint: str | None, threads: int) -> dict:
    code = CHILD.format(root=str(ROOT), setting=setting, height=height, width=width, images=images,
                        checkpoint=checkpoint, threads=threads)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["720x1280", "2160x3840"], help="HEIGHTxWIDTH ...")
    parser.add_argument("--images", type=int, default=3, help="images per process; the first is the warm-up")
    parser.add_argument("--settings", nargs="+", default=["glibc", "trim-1GiB", "keep"])
    parser.add_argument("--checkpoint", help="weights (speed does not depend on them; default random)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print("| size | setting | minor faults / image | system s / image | wall s / image | peak RSS GiB |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        height, width = (int(v) for v in size.split("x"))
        for setting in args.settings:
            r = measure(setting, height, width, args.images, args.checkpoint, args.threads)
            print(f"| {width}x{height} | {setting} | {r['faults']:,.0f} | {r['system_s']:.2f} | {r['wall_s']:.2f} | "
                  f"{r['peak_rss_gib']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
