import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# Each xdist worker (and every script it starts) gets its share of the cores, set before torch is imported: two
# workers of two OpenMP threads each on two cores spin against each other (a 4 s test took over 2 minutes beside
# another file's).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

from helpers import run_cli, save_pair, smooth_photo, spawns  # noqa: E402


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

    from core.checkpoint import save_checkpoint
    from nets import build_network

    torch.manual_seed(0)
    model = build_network("light_unet", start_filters=4)
    torch.nn.init.normal_(model.head.weight, std=0.01)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint({"model": {"name": "light_unet", "start_filters": 4}, "generator": model.state_dict()}, path)
    return path


@pytest.fixture(scope="session")
@spawns
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


# Tests that start processes (the project's scripts, servers, torchrun, pip, git) carry the "subprocess" marker,
# set where the test is written (@pytest.mark.subprocess, or a module's pytestmark); `pytest -m "not subprocess"`
# is the quick in-process run while editing. A fixture that starts them is declared with helpers.spawns, and the
# tests that use it are marked here. An unmarked test that starts a process fails, naming the marker it lacks.


def _spawning_fixtures(item) -> list[str]:
    info = getattr(item, "_fixtureinfo", None)
    return [name for name, definitions in (info.name2fixturedefs.items() if info else ())
            if any(getattr(definition.func, "starts_processes", False) for definition in definitions)]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _spawning_fixtures(item):
            item.add_marker(pytest.mark.subprocess)


def _is_python(command) -> bool:
    """A Python interpreter or torchrun: the processes that cost seconds (libraries' own helpers, such as ctypes'
    ldconfig or a platform probe's uname, are not what the marker is for)."""
    words = (command.split() if isinstance(command, str) else [str(word) for word in command]) or [""]
    name = Path(words[0]).name
    return name.startswith("python") or name == "torchrun" or words[0] == sys.executable


@pytest.fixture(autouse=True)
def _processes_only_where_marked(request, monkeypatch):
    if request.node.get_closest_marker("subprocess") is None:
        start = subprocess.Popen.__init__

        def guarded(self, *args, **kwargs):
            command = args[0] if args else kwargs.get("args")
            if _is_python(command):
                raise AssertionError(f"{request.node.nodeid} starts {command}: mark it @pytest.mark.subprocess")
            start(self, *args, **kwargs)

        monkeypatch.setattr(subprocess.Popen, "__init__", guarded)
    yield
