"""The ``data:`` section of an experiment config."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DataConfig:
    # "embedded": scikit-image's bundled photos; "folder": every image below sharp_dir. Both are blurred on the fly.
    source: str = "embedded"
    sharp_dir: str | None = None
    val_sharp_dir: str | None = None  # default: hold out val_fraction of sharp_dir's images (never trained on)
    val_fraction: float = 0.1
    crop_size: int = 96
    kernel_size: int = 21  # odd; motion paths are 3 .. kernel_size - 3 pixels long
    noise_sigma: float = 0.0  # per pair, Gaussian noise of standard deviation U(0, noise_sigma) after blurring
    train_pairs_per_epoch: int = 400
    val_crop_size: int = 160
    val_crops_per_photo: int = 4
    val_seed: int = 12345
    num_workers: int = 0

    def check(self) -> list[str]:
        problems = []
        if self.source not in ("embedded", "folder"):
            problems.append(f"data.source must be 'embedded' or 'folder', got {self.source!r}")
        if self.source == "folder" and not self.sharp_dir:
            problems.append("data.source 'folder' needs data.sharp_dir")
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            problems.append(f"data.kernel_size must be odd and >= 3, got {self.kernel_size}")
        for key in ("crop_size", "val_crop_size", "val_crops_per_photo", "train_pairs_per_epoch"):
            if getattr(self, key) < 1:
                problems.append(f"data.{key} must be >= 1, got {getattr(self, key)}")
        if not 0 < self.val_fraction < 1:
            problems.append(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.noise_sigma < 0:
            problems.append(f"data.noise_sigma must be >= 0, got {self.noise_sigma}")
        if self.num_workers < 0:
            problems.append(f"data.num_workers must be >= 0, got {self.num_workers}")
        return problems
