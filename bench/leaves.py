"""The dead-leaves generator's speed on this machine, and sample images to look at.

    python -m bench.leaves --count 32 --size 150            # the training window's size (112 px crop + 38 px)
    python -m bench.leaves --out leaves-samples --count 8   # also write PNGs
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from datasets.dead_leaves import DeadLeaves, photo_palette
from datasets.photos import embedded_photos


def main(argv: list[str] | None = None) -> int:
    """Write sample images and print the generator's speed (one process, one thread)."""
    import argparse
    import time

    from PIL import Image


    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=str, help="folder for PNG samples (default: none written)")
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--size", type=int, default=150, help="side in pixels (the training window's size)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.count < 1 or args.size < 8:
        parser.error("--count must be >= 1 and --size >= 8")
    torch.set_num_threads(1)
    leaves = DeadLeaves(photo_palette(list(embedded_photos("train"))))
    times = []
    for index in range(args.count):
        start = time.perf_counter()
        image = leaves(args.size, np.random.default_rng([args.seed, index]))
        times.append(time.perf_counter() - start)
        if args.out:
            from pathlib import Path

            Path(args.out).mkdir(parents=True, exist_ok=True)
            pixels = (image.numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
            Image.fromarray(pixels).save(Path(args.out) / f"leaves_{index:03d}.png")
    median = float(np.median(times))
    print(f"{args.count} dead-leaves images of {args.size}x{args.size}: median {median * 1000:.1f} ms each, "
          f"{1 / median:.1f} images/s on one thread")
    return 0


if __name__ == "__main__":
    sys.exit(main())
