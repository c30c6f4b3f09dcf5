"""weights/ and configs/ are found in a checkout and in an installed wheel, through one resolver."""

import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from core.resources import resource_dir
from helpers import ROOT
from restore.bundled import WEIGHTS_DIR


def test_the_checkout_folder_comes_first_then_the_installed_one(tmp_path):
    checkout, installed = tmp_path / "checkout", tmp_path / "prefix" / "share" / "lightdeblur"
    (installed / "configs").mkdir(parents=True)
    assert resource_dir("configs", checkout, [installed]) == installed / "configs"
    (checkout / "configs").mkdir(parents=True)
    assert resource_dir("configs", checkout, [installed]) == checkout / "configs"
    # Neither: the checkout's path, so a missing file is named where a user of the repository looks for it.
    assert resource_dir("weights", checkout, [installed]) == checkout / "weights"
    with pytest.raises(ValueError, match="unknown resource folder 'models'"):
        resource_dir("models", checkout, [installed])


def test_this_checkout_resolves_to_its_own_folders():
    assert WEIGHTS_DIR == ROOT / "weights" and resource_dir("configs") == ROOT / "configs"


@pytest.mark.subprocess
def test_a_built_wheel_carries_the_weights_and_configs(tmp_path):
    # Built from a copy of the sources, so the checkout gets no build/ or egg-info folders.
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    # pyproject's package list (read with a pattern: tomllib is Python 3.11+ and the project supports 3.10)
    listed = re.search(r"^packages = \[(.*?)\]", (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    packages = re.findall(r'"([^"]+)"', listed)
    assert "core" in packages and "restore" in packages
    for name in (*packages, "weights", "configs"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "train_gan.py", "infer.py", "evaluate.py", "demo.py"):
        shutil.copy(ROOT / name, source / name)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "dist").glob("lightdeblur-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = next(n.split("/data/")[0] for n in names if ".data/data/" in n) + "/data/share/lightdeblur"
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "weights").iterdir()}
    shipped |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "configs").rglob("*.yaml")}
    assert {f"{data}/{name}" for name in shipped} <= names
    assert "restore/demo_page.html" in names and "restore/favicon.svg" in names and "core/resources.py" in names
