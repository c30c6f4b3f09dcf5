"""What several test files share: the repository root, tiny settings, running a script as a user would, and
photo-like test images. Fixtures live in conftest.py; plain helpers here, imported by name."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

# Small enough for a 2-core CPU: a width-4 LightUNet on 32 px crops trains a step in milliseconds.
TINY = [
    "model.start_filters=4",
    "data.crop_size=32",
    "data.degradation.kernel_size=7",
    "data.train_pairs_per_epoch=8",
    "data.val_crop_size=32",
    "data.val_crops_per_photo=1",
    "train.epochs=2",
    "train.batch_size=4",
    "log.scalar_every=1",
    "log.lpips=false",  # offline it is unavailable anyway; skipping it spares every run torchvision's import
]


def data_config(**settings):
    """A ``DataConfig`` from one flat set of keyword arguments: the degradation's keys (kernel_size, kernels,
    noise_sigma, ...) go to its ``degradation`` section, the rest to the data section itself."""
    from datasets.config import DataConfig
    from datasets.degradation import DegradationSpec, nest_degradation

    moved, _ = nest_degradation(settings)  # the configs' own mapping of the flat keys
    return DataConfig(**{**moved, "degradation": DegradationSpec(**moved.get("degradation", {}))})


# evaluate.py scores with every metric that runs by default, ColorVideoVDP and FLIP included (seconds per call);
# tests about anything else ask for the two cheap ones.
FAST_METRICS = ["--metrics", "psnr", "ssim"]


def spawns(fixture_function):
    """Declares a fixture that starts the project's scripts or servers: every test using it is a subprocess test
    (tests/conftest.py). Put it under ``@pytest.fixture``."""
    fixture_function.starts_processes = True
    return fixture_function


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run one of the project's scripts as a user would: a real subprocess, output captured; ``env`` adds to the
    environment."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_ALBUMENTATIONS_UPDATE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def smooth_photo(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A photo-like 8-bit RGB image: smooth colour fields plus edges, so blur measurably changes it."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    channels = [np.sin(2 * np.pi * (rng.uniform(1, 4) * x + rng.uniform(1, 4) * y) + rng.uniform(0, 6))
                for _ in range(3)]
    image = (np.stack(channels, axis=-1) + 1) / 2
    image[(x * 7).astype(int) % 2 == (y * 5).astype(int) % 2] *= 0.6  # hard edges
    return (image * 255).round().astype(np.uint8)


def save_pair(blur_path: Path, sharp_path: Path, rng: np.random.Generator, height: int = 48, width: int = 64) -> None:
    """A sharp photo and a blurred partner of the same size, as real files."""
    sharp = smooth_photo(rng, height, width)
    blurred = (sharp.astype(np.float32) + np.roll(sharp, 2, axis=1) + np.roll(sharp, 4, axis=1)) / 3
    for path, image in ((blur_path, blurred.round().astype(np.uint8)), (sharp_path, sharp)):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` and its bytes: what a refused command must leave as it was."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The single ``error:`` line a refused command prints, with exit code 2 (asserted)."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def save_photo(path: Path, seed: int = 0, size=(48, 64)) -> Path:
    """A photo-like PNG (or any format the suffix names) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(smooth_photo(np.random.default_rng(seed), *size)).save(path)
    return path
