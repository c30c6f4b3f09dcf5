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
    "log.lpips=false",  # offline it is unavailable anyway; skipping it spares every run torchvision's import
]


# evaluate.py scores with every metric that runs by default, ColorVideoVDP and FLIP included (seconds per call);
# tests about anything else ask for the two cheap ones.
FAST_METRICS = ["--metrics", "psnr", "ssim"]


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


def save_pair(blur_path: Path, sharp_path: Path, rng: np.random.Generator, height: int = 48, width: int = 64) -> None:
    """A sharp photo and a blurred partner of the same size, as real files."""
    sharp = smooth_photo(rng, height, width)
    blurred = (sharp.astype(np.float32) + np.roll(sharp, 2, axis=1) + np.roll(sharp, 4, axis=1)) / 3
    for path, image in ((blur_path, blurred.round().astype(np.uint8)), (sharp_path, sharp)):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)


@pytest.fixture
def gopro_tree(tmp_path: Path) -> Path:
    """GOPRO_Large/{train,test}/<sequence>/{blur,blur_gamma,sharp}/*.png with 6 train and 2 test sequences."""
    root = tmp_path / "GOPRO_Large"
    rng = np.random.default_rng(1)
    for split, count in (("train", 6), ("test", 2)):
        for sequence in range(count):
            folder = root / split / f"GOPR{sequence:04d}_11_00"
            for frame in range(3):
                name = f"{frame:06d}.png"
                save_pair(folder / "blur" / name, folder / "sharp" / name, rng)
                (folder / "blur_gamma").mkdir(exist_ok=True)
                (folder / "blur_gamma" / name).write_bytes((folder / "blur" / name).read_bytes())
    return root


@pytest.fixture
def realblur_tree(tmp_path: Path) -> Path:
    """RealBlur's layout: scene folders with gt/ and blur/, and list files of 'gt_path blur_path' lines."""
    root = tmp_path / "RealBlur"
    rng = np.random.default_rng(2)
    for variant in ("J", "R"):
        base = f"RealBlur-{variant}_ECC_IMCORR_centroid_itensity_ref"
        for split, scenes in (("train", range(5)), ("test", range(5, 7))):
            lines = []
            for scene in scenes:
                for frame in (1, 2):
                    gt, blur = f"{base}/scene{scene:03d}/gt/gt_{frame}.png", f"{base}/scene{scene:03d}/blur/blur_{frame}.png"
                    save_pair(root / blur, root / gt, rng)
                    lines.append(f"{gt} {blur}")
            (root / f"RealBlur_{variant}_{split}_list.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def paired_tree(tmp_path: Path) -> Path:
    """root/blur and root/sharp with matching names in two sub-folders (two videos)."""
    root = tmp_path / "paired"
    rng = np.random.default_rng(3)
    for video in ("video_a", "video_b", "video_c"):
        for frame in range(2):
            save_pair(root / "blur" / video / f"{frame}.png", root / "sharp" / video / f"{frame}.png", rng)
    return root


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """A real checkpoint file of a width-4 LightUNet whose head is not the identity (so it changes images)."""
    import torch

    from gan.checkpoint import save_checkpoint
    from nets import build_network

    torch.manual_seed(0)
    model = build_network("light_unet", start_filters=4)
    torch.nn.init.normal_(model.head.weight, std=0.01)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint({"model": {"name": "light_unet", "start_filters": 4}, "generator": model.state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def bench_folder(tmp_path_factory):
    """A tiny benchmark (6 images of 32x32, 9 px kernels) built by the real command; tests only read it."""
    root = tmp_path_factory.mktemp("bench")
    photos = root / "photos"
    photos.mkdir()
    rng = np.random.default_rng(7)
    for index in range(2):
        Image.fromarray(smooth_photo(rng, 80, 96)).save(photos / f"p{index}.png")
    result = run_cli("-m", "datasets.benchmark", "--out", str(root / "tiny-v1"), "--photos", str(photos),
                     "--tile", "32", "--kernel-size", "9", "--crops-per-photo", "3", "--min-texture", "0",
                     cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "tiny-v1"
