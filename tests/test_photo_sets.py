"""The photo-set builder, on a manifest of files the test makes (real JPEG/PNG files, real subprocess)."""

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from helpers import one_error_line, run_cli, smooth_photo

# The photos these tests make are far smaller than real ones: admit them past the "tiny photo" rule.
SMALL_PHOTOS = ("--min-side", "64")


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
                     *SMALL_PHOTOS, cwd=tmp_path)
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
                     "--scales", "2", "4", "--min-texture", "0", *SMALL_PHOTOS, cwd=tmp_path)
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
    bad = run_cli("-m", "datasets.photo_sets", "--out", str(tmp_path / "other"), "--manifest", str(manifest),
                  "--min-jpeg-quality", "120", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "error: --min-side must be >= 0 and --min-jpeg-quality in [0, 100], got 400 and 120")
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


def _entry(path, name, split="train", collection="core"):
    return {"name": name, "source": "some-photos", "version": "1", "kind": "debian", "path": str(path),
            "split": split, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "licence": "CC0",
            "collection": collection}


def _rules_manifest(tmp_path):
    """Validation: a lossless photo. Training: a good JPEG (core), a quality-40 JPEG, a thumbnail, a large lossless
    photo and a photo of the 'more' collection."""
    rng = np.random.default_rng(1)
    folder = tmp_path / "source"
    folder.mkdir()
    files = {}
    Image.fromarray(smooth_photo(rng, 160, 240)).save(files.setdefault("val", folder / "val.png"))
    Image.fromarray(smooth_photo(rng, 512, 512)).save(files.setdefault("good", folder / "good.jpg"), quality=90)
    Image.fromarray(smooth_photo(rng, 512, 512)).save(files.setdefault("blocky", folder / "blocky.jpg"), quality=40)
    Image.fromarray(smooth_photo(rng, 200, 300)).save(files.setdefault("thumb", folder / "thumb.jpg"), quality=95)
    Image.fromarray(smooth_photo(rng, 1200, 1800)).save(files.setdefault("huge", folder / "huge.png"))
    Image.fromarray(smooth_photo(rng, 512, 512)).save(files.setdefault("extra", folder / "extra.jpg"), quality=90)
    entries = [_entry(files["val"], "val", split="val")]
    entries += [_entry(files[name], name) for name in ("good", "blocky", "thumb", "huge")]
    entries.append(_entry(files["extra"], "extra", collection="more"))
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(entries))
    return manifest, files


def test_the_jpeg_quality_estimate_reads_the_quality_a_file_was_saved_at(tmp_path):
    from datasets.photo_rules import jpeg_quality

    photo = Image.fromarray(smooth_photo(np.random.default_rng(0), 64, 64))
    for quality in (40, 50, 70, 85, 95):
        photo.save(tmp_path / "q.jpg", quality=quality)
        with Image.open(tmp_path / "q.jpg") as saved:
            assert abs(jpeg_quality(saved) - quality) <= 1, quality
    photo.save(tmp_path / "q.png")
    with Image.open(tmp_path / "q.png") as lossless:
        assert jpeg_quality(lossless) is None


@pytest.mark.subprocess
def test_tiny_and_heavily_compressed_training_photos_are_dropped_by_rule_and_collections_choose_the_rest(tmp_path):
    manifest, _ = _rules_manifest(tmp_path)
    out = tmp_path / "photos"
    result = run_cli("-m", "datasets.photo_sets", "--out", str(out), "--tile", "64", "--manifest", str(manifest),
                     "--min-texture", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "manifest.json").read_text())
    dropped = {d["name"]: d["why"] for d in record["dropped_photos"]}
    assert dropped == {"blocky": "JPEG quality about 40 < 70", "thumb": "shorter side 200 px < 400"}
    reductions = {s["name"]: s["downscale"] for s in record["sources"]}
    # JPEGs and lossless photos above 2 MP are reduced by 2 before tiling; the small lossless one is not.
    assert reductions == {"val": 1, "good": 2, "huge": 2}
    stems = {p.name.rsplit("_", 2)[0] for p in (out / "train").iterdir()}
    assert stems == {"good", "huge"} and record["collections"] == ["core"]
    assert len(list((out / "train").iterdir())) == (256 // 64) ** 2 + (600 // 64) * (900 // 64)

    more = tmp_path / "more"
    result = run_cli("-m", "datasets.photo_sets", "--out", str(more), "--tile", "64", "--manifest", str(manifest),
                     "--min-texture", "0", "--collections", "core", "more", "--min-jpeg-quality", "30",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    stems = {p.name.rsplit("_", 2)[0] for p in (more / "train").iterdir()}
    assert stems == {"good", "huge", "extra", "blocky"}  # the thumbnail is still too small


@pytest.mark.subprocess
def test_a_training_photo_that_is_a_copy_of_a_validation_photo_is_refused(tmp_path):
    """A benchmark photo resized and re-encoded by another package has another sha256; its content gives it away."""
    manifest, files = _rules_manifest(tmp_path)
    copy = tmp_path / "source" / "copy.jpg"
    with Image.open(files["val"]) as val:
        val.resize((600, 400)).save(copy, quality=75)
    entries = json.loads(manifest.read_text()) + [_entry(copy, "copy")]
    manifest.write_text(json.dumps(entries))
    out = tmp_path / "photos"
    result = run_cli("-m", "datasets.photo_sets", "--out", str(out), "--tile", "64", "--manifest", str(manifest),
                     cwd=tmp_path)
    line = one_error_line(result)
    assert "copy.jpg looks like the validation photo val" in line
    assert not out.exists() and not (tmp_path / "photos.partial").exists()


def test_unrelated_photos_of_the_shipped_manifest_do_not_look_alike():
    """The look-alike rule must not fire between different scenes: every pinned photo at hand against every other
    (two horizons' plain thumbnails correlate above 0.9; their detail does not)."""
    from core.images import open_image
    from datasets.photo_rules import LOOKALIKE_CORRELATION, thumbnail
    from datasets.photo_sets import MANIFEST
    from datasets.photo_sources import read_manifest, source_path

    paths = [source_path(entry) for entry in read_manifest(MANIFEST)]
    looks = np.stack([thumbnail(open_image(path).convert("RGB")) for path in paths if path.is_file()])
    if len(looks) < 10:
        pytest.skip("fewer than 10 of the manifest's photos are on this machine")
    similarity = looks @ looks.T
    np.fill_diagonal(similarity, 0)
    assert similarity.max() < LOOKALIKE_CORRELATION - 0.2


def test_every_pinned_photo_has_a_licence_a_collection_and_a_unique_name():
    from datasets.photo_sets import MANIFEST
    from datasets.photo_sources import COLLECTIONS, collection

    entries = json.loads(MANIFEST.read_text())
    assert len({e["name"] for e in entries}) == len(entries)
    assert len({e["sha256"] for e in entries}) == len(entries)
    for entry in entries:
        assert entry["licence"].strip() and collection(entry) in COLLECTIONS, entry["name"]
        assert len(entry["sha256"]) == 64 and int(entry["sha256"], 16) >= 0
        assert entry["kind"] in ("debian", "pip") and entry["split"] in ("train", "val")
    # The benchmarks are cut from the core validation photos; the further collection only adds training photos.
    assert all(collection(e) == "core" for e in entries if e["split"] == "val")
    assert sum(collection(e) == "more" for e in entries) >= 50
