import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

ROOT = Path(__file__).resolve().parents[1]

# Small enough for a 2-core CPU: a width-4 LightUNet on 32 px crops trains a step in milliseconds.
TINY = [
    "model.start_filters=4",
    "data.crop_size=32",
    "data.kernel_size=7",
    "data.train_pairs_per_epoch=8",
    "data.val_crop_size=32",
    "data.val_crops_per_photo=1",
    "train.epochs=2",
    "train.batch_size=4",
    "log.scalar_every=1",
]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run one of the project's scripts as a user would: a real subprocess, output captured."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_ALBUMENTATIONS_UPDATE": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def smooth_photo(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A photo-like 8-bit RGB image: smooth colour fields plus edges, so blur measurably changes it."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    channels = [np.sin(2 * np.pi * (rng.uniform(1, 4) * x + rng.uniform(1, 4) * y) + rng.uniform(0, 6)) for _ in range(3)]
    image = (np.stack(channels, axis=-1) + 1) / 2
    image[(x * 7).astype(int) % 2 == (y * 5).astype(int) % 2] *= 0.6  # hard edges
    return (image * 255).round().astype(np.uint8)


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """Five real PNG/JPEG files of sharp synthetic photos."""
    folder = tmp_path / "sharp"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(5):
        suffix = ".jpg" if index == 4 else ".png"
        Image.fromarray(smooth_photo(rng, 64, 80)).save(folder / f"photo{index}{suffix}", quality=95)
    return folder
