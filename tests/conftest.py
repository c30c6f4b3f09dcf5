import inspect
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from helpers import run_cli, save_pair, smooth_photo  # noqa: E402


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
                    scene_dir = f"{base}/scene{scene:03d}"
                    gt, blur = f"{scene_dir}/gt/gt_{frame}.png", f"{scene_dir}/blur/blur_{frame}.png"
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

    from nets import build_network
    from restore.checkpoint import save_checkpoint

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


# Tests that start the project's scripts (or servers) as real subprocesses, directly or through a fixture, carry
# the "subprocess" marker: `pytest -m "not subprocess"` is the quick in-process run while editing.
SUBPROCESS_WORDS = ("run_cli(", "subprocess.", "Popen(")


def _starts_processes(function) -> bool:
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    return any(word in source for word in SUBPROCESS_WORDS)


def pytest_collection_modifyitems(config, items):
    for item in items:
        fixtures = getattr(item, "_fixtureinfo", None)
        functions = [item.function] + [
            definition.func
            for definitions in (fixtures.name2fixturedefs.values() if fixtures else ())
            for definition in definitions
        ]
        if any(_starts_processes(function) for function in functions):
            item.add_marker(pytest.mark.subprocess)
