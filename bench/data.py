"""Data-pipeline throughput: kernels per second of each kind, synthetic pairs per second, loader pairs per second.

    python bench/data.py                         # 256x256 crops, 31x31 kernels, embedded photos
    python bench/data.py --crop 256 --kernel 31 --repeats 5 --workers 0 2 --json bench/data.json
    python bench/data.py --config configs/long_run.yaml  # also: the training pairs of a config, as its run makes them

Each figure is the median of --repeats timed runs after a warm-up run. Pairs are made exactly as in training
(random window, albumentations augmentation, kernel, linear-light blur, noise) from the embedded photos, which
are decoded once, so the figures measure the pipeline and not the PNG decoder. Run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from bench.timing import median_seconds  # noqa: E402
from datasets.augment import PairedAugment  # noqa: E402
from datasets.kernels import KERNEL_KINDS, KernelMix  # noqa: E402
from datasets.photos import embedded_photos  # noqa: E402
from datasets.synthetic import Degradation, SyntheticBlurPairs  # noqa: E402


def median_rate(run, count: int, repeats: int) -> float:
    return count / median_seconds(run, repeats)


def loader_pairs_per_second(
    crop: int, kernel: int, workers: int, count: int = 64, repeats: int = 3, blur_on_device: bool = False
) -> float:
    """Training pairs per second through a DataLoader (batch 8): the mixed kernels with noise, as in training.
    ``blur_on_device``: the workers' share only (windows, kernels, levels); the blur is left to the trainer."""
    photos = embedded_photos("train")
    degradation = Degradation(kernel, {"trajectory": 0.7, "linear": 0.1, "gaussian": 0.1, "defocus": 0.1},
                              noise_sigma=0.01, poisson_peak=1000.0)
    dataset = SyntheticBlurPairs(photos, len(photos), crop, count, degradation, augment=PairedAugment(None),
                                 blur_on_device=blur_on_device)
    loader = DataLoader(dataset, batch_size=8, num_workers=workers, persistent_workers=workers > 0)
    return median_rate(lambda loader=loader: [None for _ in loader], count, repeats)


def config_pairs_per_second(config_path: Path, count: int, repeats: int) -> dict[str, float]:
    """Training pairs per second of a config's own training set (its photos, kernels, noise, JPEG, leaves), one
    process, one thread: what one loader worker delivers, to set against the training step."""
    from datasets import build_datasets
    from gan.config import load_config

    torch.set_num_threads(1)
    config = load_config(config_path)
    dataset = build_datasets(config.data, seed=0).train
    rate = median_rate(lambda: [dataset[(0, i)] for i in range(count)], count, repeats)
    return {f"pairs/s of {config_path.name}'s training set ({config.data.crop_size} px), 1 thread": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--kernel", type=int, default=31)
    parser.add_argument("--count", type=int, default=64, help="items per timed run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--config", type=Path, help="also time the training pairs of this experiment config")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    rows: dict[str, float] = {}
    for kind in KERNEL_KINDS:
        mix = KernelMix(args.kernel, {kind: 1.0})
        rng = np.random.default_rng(0)
        rows[f"kernels/s {kind} {args.kernel}x{args.kernel}"] = median_rate(
            lambda mix=mix, rng=rng: [mix(rng) for _ in range(args.count)], args.count, args.repeats
        )

    photos = embedded_photos("train")
    mixed = {"trajectory": 0.7, "linear": 0.1, "gaussian": 0.1, "defocus": 0.1}
    for noise in (False, True):
        degradation = Degradation(args.kernel, mixed, noise_sigma=0.02 if noise else 0.0,
                                  poisson_peak=300.0 if noise else 0.0, saturation=0.3 if noise else 0.0)
        dataset = SyntheticBlurPairs(photos, len(photos), args.crop, args.count, degradation,
                                     augment=PairedAugment(None, color_jitter=0.05))
        label = "with noise + saturation" if noise else "blur only"
        rows[f"pairs/s {args.crop}x{args.crop} {label}"] = median_rate(
            lambda dataset=dataset: [dataset[i] for i in range(args.count)], args.count, args.repeats
        )
    for workers in args.workers:
        loader = DataLoader(dataset, batch_size=8, num_workers=workers, persistent_workers=workers > 0)
        rows[f"loader pairs/s {args.crop}x{args.crop}, batch 8, {workers} workers"] = median_rate(
            lambda loader=loader: [None for _ in loader], args.count, args.repeats
        )

    if args.config is not None:
        rows.update(config_pairs_per_second(args.config, args.count, args.repeats))

    width = max(map(len, rows))
    print(f"{'figure':<{width}}  median")
    for name, value in rows.items():
        print(f"{name:<{width}}  {value:8.1f}")
    if args.json:
        args.json.write_text(json.dumps({"threads": torch.get_num_threads(), **rows}, indent=1))


if __name__ == "__main__":
    main()
