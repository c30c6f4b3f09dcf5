"""Benchmark photos taken out of a pip package's wheel without installing it (datasets.package_photos), through
the real command line, on a wheel built here (no network)."""

import hashlib
import json
import zipfile

import pytest

from datasets.photo_sources import source_path
from helpers import ROOT, one_error_line, run_cli, save_photo

pytestmark = pytest.mark.subprocess  # every test here starts the project's scripts or servers


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A wheel of a package 'toy-pics' holding one photo, a manifest pinning it, and an empty cache."""
    photo = save_photo(tmp_path / "kodim.png")
    wheel = tmp_path / "toy_pics-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(photo, "toy_pics/data/kodim.png")
        archive.writestr("toy_pics/__init__.py", "")
    entry = {"name": "kodim", "source": "toy-pics", "version": "1.0", "kind": "pip", "path": "data/kodim.png",
             "split": "val", "sha256": hashlib.sha256(photo.read_bytes()).hexdigest()}
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps([entry]))
    monkeypatch.setenv("LIGHTDEBLUR_PHOTO_CACHE", str(tmp_path / "cache"))
    return photo, wheel, manifest, entry


def _fetch(manifest, *args):
    return run_cli("-m", "datasets.package_photos", "--manifest", str(manifest), *args, cwd=ROOT)


def test_the_pinned_photo_comes_out_of_the_wheel_into_the_cache_where_the_builders_look(toy):
    photo, wheel, manifest, entry = toy
    assert not source_path(entry).is_file()  # not installed, not cached
    result = _fetch(manifest, "--wheel", str(wheel))
    assert result.returncode == 0 and result.stdout.startswith("1 photo file(s) written"), result.stderr
    found = source_path(entry)
    assert found.is_file() and found.read_bytes() == photo.read_bytes()
    assert sorted(p.name for p in found.parent.parent.parent.rglob("*") if p.is_file()) == ["kodim.png"]
    again = _fetch(manifest, "--wheel", str(wheel))
    assert again.returncode == 0 and "already at hand" in again.stdout


def test_a_wheel_whose_photo_differs_from_the_pin_writes_nothing(toy, tmp_path):
    _, wheel, manifest, entry = toy
    entry["sha256"] = "0" * 64
    manifest.write_text(json.dumps([entry]))
    line = one_error_line(_fetch(manifest, "--wheel", str(wheel)))
    assert "toy_pics/data/kodim.png" in line and "expected " + "0" * 64 in line
    assert not (tmp_path / "cache").exists()


def test_a_wheel_without_the_photo_or_not_a_wheel_is_one_line(toy, tmp_path):
    _, wheel, manifest, entry = toy
    entry["path"] = "data/missing.png"
    manifest.write_text(json.dumps([entry]))
    assert "has no toy_pics/data/missing.png" in one_error_line(_fetch(manifest, "--wheel", str(wheel)))
    fake = tmp_path / "toy_pics-1.0-py3-none-any.whl"
    fake.write_bytes(b"not a zip")
    assert "is not a readable wheel" in one_error_line(_fetch(manifest, "--wheel", str(fake)))
    assert not (tmp_path / "cache").exists()
