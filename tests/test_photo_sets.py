"""The photo-set builder, on a manifest of files the test makes (real JPEG/PNG files, real subprocess)."""

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from helpers import run_cli, smooth_photo


def make_manifest(tmp_path, flat_side=True):
    rng = np.random.default_rng(0)
    photo = smooth_photo(rng, 128, 256)
    if flat_side:
        photo[:, 128:] = 90  # the right half is flat: its tiles must be dropped
    jpeg = tmp_path / "source" / "wallpaper.jpg"
    jpeg.parent.mkdir()
    Image.fromarray(photo).save(jpeg, quality=95)
    entries = [
        {"name": "wall", "source": "some-wallpapers", "kind": "debian", "path": str(jpeg), "split": "train",
         "sha256": hashlib.sha256(jpeg.read_bytes()).hexdigest()},
        {"name": "gone", "source": "not-installed-wallpapers", "kind": "debian", "path": str(tmp_path / "no.jpg"),
         "split": "train", "sha256": "0" * 64},
    ]
    import skimage

    coffee = f"{skimage.__path__[0]}/data/coffee.png"
    entries.append({"name": "coffee", "source": "scikit-image", "kind": "pip", "path": "data/coffee.png",
                    "split": "val", "sha256": hashlib.sha256(open(coffee, "rb").read()).hexdigest()})
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(entries))
    return manifest, entries


@pytest.mark.subprocess
def test_builds_downscaled_textured_tiles_and_names_missing_packages(tmp_path):
    manifest, _ = make_manifest(tmp_path)
    out = tmp_path / "photos"
    result = run_cli("-m", "datasets.photo_sets", "--out", str(out), "--tile", "32", "--manifest", str(manifest),
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "not-installed-wallpapers is not installed" in result.stderr and "apt-get install" in result.stderr
    record = json.loads((out / "manifest.json").read_text())
    # 256x128 JPEG downscaled by 2 -> 128x64 -> 4x2 tiles of 32, the flat right half dropped.
    train = sorted(p.name for p in (out / "train").iterdir())
    assert len(train) == 4 and all(int(name.split("_")[2][:-4]) < 64 for name in train)
    assert sum(1 for d in record["dropped_flat"] if d["name"].startswith("wall_")) == 4
    assert all(Image.open(p).size == (32, 32) for p in (out / "train").iterdir())
    # coffee.png (600x400, lossless) is tiled at full size.
    assert len(list((out / "val").iterdir())) == (600 // 32) * (400 // 32) - sum(
        1 for d in record["dropped_flat"] if d["name"].startswith("coffee")
    )


@pytest.mark.subprocess
def test_more_scales_add_tiles_of_the_training_photos_only(tmp_path):
    manifest, _ = make_manifest(tmp_path)
    out = tmp_path / "photos"
    result = run_cli("-m", "datasets.photo_sets", "--out", str(out), "--tile", "32", "--manifest", str(manifest),
                     "--scales", "2", "4", "--min-texture", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    train = sorted(p.name for p in (out / "train").iterdir())
    # 256x128 JPEG: reduced by 2 -> 128x64 -> 8 tiles of 32 (single-scale names); by 4 -> 64x32 -> 2 tiles.
    assert len([n for n in train if "_x4_" not in n]) == 8 and len([n for n in train if "_x4_" in n]) == 2
    record = json.loads((out / "manifest.json").read_text())
    assert record["scales"] == [2, 4]
    assert sorted(s["downscale"] for s in record["sources"] if s["split"] == "train") == [2, 4]
    # The validation photo (lossless) stays once, at full size.
    assert [s["downscale"] for s in record["sources"] if s["split"] == "val"] == [1]
    assert len(list((out / "val").iterdir())) == (600 // 32) * (400 // 32)
    bad = run_cli("-m", "datasets.photo_sets", "--out", str(tmp_path / "other"), "--manifest", str(manifest),
                  "--scales", "2", "2", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: --scales must be distinct whole factors >= 1, got [2, 2]"
    assert not (tmp_path / "other").exists()


@pytest.mark.subprocess
def test_a_changed_source_file_is_named_and_nothing_is_written(tmp_path):
    manifest, entries = make_manifest(tmp_path)
    entries[0]["sha256"] = "f" * 64
    manifest.write_text(json.dumps(entries))
    out = tmp_path / "photos"
    result = run_cli("-m", "datasets.photo_sets", "--out", str(out), "--manifest", str(manifest), cwd=tmp_path)
    assert result.returncode == 2
    assert "wallpaper.jpg has sha256" in result.stderr and "--no-hash-check" in result.stderr
    assert not out.exists() and not (tmp_path / "photos.partial").exists()


@pytest.mark.subprocess
def test_an_existing_set_is_kept_unless_overwrite(tmp_path):
    manifest, _ = make_manifest(tmp_path)
    out = tmp_path / "photos"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    result = run_cli("-m", "datasets.photo_sets", "--out", str(out), "--manifest", str(manifest), cwd=tmp_path)
    assert result.returncode == 2 and "already exists" in result.stderr
    assert (out / "mine.txt").read_text() == "keep me"


def test_the_shipped_manifest_never_trains_on_a_benchmark_photo():
    """The benchmarks are cut from the manifest's validation photos; no training entry may be one of them, by name,
    file or content (the embedded scikit-image training photos share a package with two benchmark photos)."""
    from datasets.photo_sets import MANIFEST
    from datasets.photos import TRAIN_PHOTOS, VAL_PHOTOS

    entries = json.loads(MANIFEST.read_text())
    train = [e for e in entries if e["split"] == "train"]
    val = [e for e in entries if e["split"] == "val"]
    assert train and val and len(train) + len(val) == len(entries)
    for key in ("name", "path", "sha256"):
        assert not {e[key] for e in train} & {e[key] for e in val}, key
    assert {"coffee", "chelsea"} <= {e["name"] for e in val} and not set(VAL_PHOTOS) & {e["name"] for e in train}
    # The scikit-image training entries are photos the embedded default source trains on too.
    assert {e["name"] for e in train if e["source"] == "scikit-image"} <= set(TRAIN_PHOTOS)
