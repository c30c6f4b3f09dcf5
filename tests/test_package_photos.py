"""Benchmark photos taken out of a pip package's wheel without installing it (datasets.package_photos), through
the real command line, on a wheel built here (no network)."""

import hashlib
import json
import shutil
import subprocess
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


@pytest.fixture
def toy_deb(tmp_path, monkeypatch):
    """A real Debian package 'toy-photos' (dpkg-deb --build) holding one photo among other files, a manifest pinning
    the photo as a training photo of the 'more' collection, and an empty cache."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not on this machine")
    root = tmp_path / "package"
    photo = save_photo(root / "usr/share/toy-photos/pic.jpg", size=(64, 96))
    save_photo(root / "usr/share/toy-photos/other.png", seed=1)
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN/control").write_text("Package: toy-photos\nVersion: 1:1.0-1\nArchitecture: all\n"
                                         "Maintainer: Tests <tests@example.org>\nDescription: photos for a test\n")
    deb = tmp_path / "toy-photos_1.0-1_all.deb"
    built = subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], capture_output=True,
                           text=True)
    assert built.returncode == 0, built.stderr
    entry = {"name": "toy-pic", "source": "toy-photos", "version": "1:1.0-1", "kind": "debian",
             "path": "/usr/share/toy-photos/pic.jpg", "split": "train", "licence": "CC0", "collection": "more",
             "sha256": hashlib.sha256(photo.read_bytes()).hexdigest()}
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps([entry]))
    monkeypatch.setenv("LIGHTDEBLUR_PHOTO_CACHE", str(tmp_path / "cache"))
    return photo, deb, manifest, entry


def test_training_photos_come_out_of_a_debian_package_without_installing_it(toy_deb, tmp_path):
    photo, deb, manifest, entry = toy_deb
    assert not source_path(entry).is_file()
    # Without --training only benchmark photos are fetched; without 'more' only the core training photos.
    for args in ((), ("--training",)):
        result = _fetch(manifest, "--deb", str(deb), *args)
        assert result.returncode == 0 and "already at hand" in result.stdout, result.stderr
    assert not (tmp_path / "cache").exists()
    result = _fetch(manifest, "--deb", str(deb), "--training", "--collections", "core", "more")
    assert result.returncode == 0 and result.stdout.startswith("1 photo file(s) written"), result.stderr
    found = source_path(entry)
    assert found.is_file() and found.read_bytes() == photo.read_bytes()
    # Only the pinned file is taken out of the package; the epoch's colon is not part of the folder name.
    assert [p.relative_to(tmp_path / "cache").as_posix() for p in (tmp_path / "cache").rglob("*") if p.is_file()] \
        == ["toy-photos-1_1.0-1/usr/share/toy-photos/pic.jpg"]


def test_a_debian_package_whose_photo_differs_or_that_is_no_package_writes_nothing(toy_deb, tmp_path):
    _, deb, manifest, entry = toy_deb
    fetch_more = ("--training", "--collections", "more")
    manifest.write_text(json.dumps([{**entry, "sha256": "0" * 64}]))
    line = one_error_line(_fetch(manifest, "--deb", str(deb), *fetch_more))
    assert "./usr/share/toy-photos/pic.jpg in " in line and "expected " + "0" * 64 in line
    manifest.write_text(json.dumps([{**entry, "path": "/usr/share/toy-photos/gone.jpg"}]))
    assert "has no ./usr/share/toy-photos/gone.jpg" in one_error_line(_fetch(manifest, "--deb", str(deb),
                                                                             *fetch_more))
    fake = tmp_path / "toy-photos_1.0-1_all.deb"
    fake.write_bytes(b"not an ar archive")
    manifest.write_text(json.dumps([entry]))
    line = one_error_line(_fetch(manifest, "--deb", str(fake), *fetch_more))
    assert line.startswith(f"error: {fake} is not a readable Debian package: ")
    assert not (tmp_path / "cache").exists()
