"""Every bad-input case of the data issue: handled correctly, or one message naming the file."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from core.images import image_size, read_array
from datasets import DataError, build_datasets
from helpers import data_config, save_pair, smooth_photo

SMALL = dict(crop_size=16, val_crop_size=16, val_crops_per_photo=1, train_pairs_per_epoch=4)


@pytest.fixture
def pairs_root(tmp_path):
    rng = np.random.default_rng(0)
    for index in range(4):
        save_pair(tmp_path / "blur" / f"{index}.png", tmp_path / "sharp" / f"{index}.png", rng)
    return tmp_path


def config(root, **extra):
    return data_config(source="paired", root=str(root), **{**SMALL, **extra})


def break_pair(root, kind):
    """Make one pair bad in the given way; returns the file the message must name."""
    target = root / "blur" / "2.png"
    if kind == "size mismatch":
        Image.fromarray(smooth_photo(np.random.default_rng(1), 40, 64)).save(target)
    elif kind == "no partner":
        (root / "sharp" / "2.png").unlink()
    elif kind == "corrupt":
        target.write_bytes(b"\x89PNG\r\n\x1a\n this is not image data")
    elif kind == "truncated":
        target.write_bytes(target.read_bytes()[:-200])
    elif kind == "not an image":
        target.write_text("width,height\n64,48\n")
    return target


@pytest.mark.parametrize("kind", ["size mismatch", "no partner", "corrupt", "truncated", "not an image"])
def test_bad_pairs_fail_with_the_file_named_or_are_skipped_and_counted(pairs_root, kind, capsys):
    bad = break_pair(pairs_root, kind)
    with pytest.raises(DataError, match=str(bad).replace(".", r"\.")):
        build_datasets(config(pairs_root))
    data = build_datasets(config(pairs_root, on_bad="skip"))
    assert len(data.split["skipped"]) == 1 and str(bad) in data.split["skipped"][0]
    assert len(data.split["train"]) + len(data.split["val"]) == 3
    assert "skipped 1 bad pair(s)" in capsys.readouterr().err


def test_every_problem_is_counted_when_failing(pairs_root):
    break_pair(pairs_root, "corrupt")
    (pairs_root / "sharp" / "0.png").unlink()
    with pytest.raises(DataError, match=r"and 1 more problem\(s\); data.on_bad=skip skips them"):
        build_datasets(config(pairs_root))


def test_a_jpeg_truncated_past_its_header_is_named_when_it_is_decoded(pairs_root):
    image = Image.open(pairs_root / "blur" / "1.png").convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    (pairs_root / "blur" / "1.png").unlink()
    (pairs_root / "blur" / "1.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (pairs_root / "sharp" / "1.png").rename(pairs_root / "sharp" / "1.jpg")
    with pytest.raises(DataError, match=r"1\.jpg"):
        read_array(pairs_root / "blur" / "1.jpg")


def write_mode(path, mode, rgb):
    """Save ``rgb`` (H x W x 3 uint8) in one of the awkward modes; returns what read_array must give back."""
    image = Image.fromarray(rgb)
    if mode == "L":
        gray = image.convert("L")
        gray.save(path)
        return np.repeat(np.asarray(gray, dtype=np.float32)[..., None] / 255, 3, axis=2)
    if mode == "RGBA":
        rgba = image.convert("RGBA")
        rgba.putalpha(128)
        rgba.save(path)
        return rgb.astype(np.float32) / 255
    if mode == "I;16":
        values = (rgb[..., 0].astype(np.uint16) * 257) + 3
        Image.fromarray(values).save(path)
        return np.repeat((values.astype(np.float32) / 65535)[..., None], 3, axis=2)
    if mode == "P":
        palette = image.quantize(16)
        palette.save(path)
        return np.asarray(palette.convert("RGB"), dtype=np.float32) / 255
    if mode == "CMYK":
        cmyk = image.convert("CMYK")
        cmyk.save(path, quality=100)
        return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "P", "CMYK"])
def test_awkward_image_modes_are_converted_to_rgb_with_their_precision(tmp_path, mode):
    rgb = smooth_photo(np.random.default_rng(2), 24, 32)
    path = tmp_path / ("image.jpg" if mode == "CMYK" else "image.png")
    expected = write_mode(path, mode, rgb)
    array = read_array(path)
    assert array.shape == (24, 32, 3) and array.dtype == np.float32
    np.testing.assert_allclose(array, expected, atol=1e-6)  # for I;16: all 16 bits, not truncated to 8


def test_an_exif_rotated_jpeg_is_read_upright_and_pairs_with_its_upright_partner(tmp_path):
    rgb = smooth_photo(np.random.default_rng(3), 24, 40)
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(rgb, 1)))  # stored sideways: 40 high, 24 wide
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    (tmp_path / "blur").mkdir()
    (tmp_path / "sharp").mkdir()
    for index in range(3):
        stored.save(tmp_path / "blur" / f"{index}.jpg", quality=100, exif=exif)
        Image.fromarray(rgb).save(tmp_path / "sharp" / f"{index}.jpg", quality=100)
    assert image_size(tmp_path / "blur" / "0.jpg") == (40, 24)
    np.testing.assert_allclose(read_array(tmp_path / "blur" / "0.jpg"), read_array(tmp_path / "sharp" / "0.jpg"),
                               atol=0.06)
    data = build_datasets(config(tmp_path))  # no size-mismatch error: sizes are compared upright
    assert len(data.split["skipped"]) == 0


def test_nan_after_decoding_is_named(tmp_path):
    array = np.full((20, 20), np.nan, dtype=np.float32)
    Image.fromarray(array, mode="F").save(tmp_path / "nan.tif")
    with pytest.raises(DataError, match=r"nan\.tif contains non-finite values"):
        read_array(tmp_path / "nan.tif")


def test_missing_roots_and_list_files_are_named(tmp_path):
    with pytest.raises(DataError, match=r"GoPro train folder .*nowhere/train does not exist"):
        build_datasets(data_config(source="gopro", root=str(tmp_path / "nowhere"), **SMALL))
    with pytest.raises(DataError, match=r"RealBlur_J_train_list\.txt does not exist"):
        build_datasets(data_config(source="realblur", root=str(tmp_path), **SMALL))
    with pytest.raises(DataError, match=r"pairs file .*pairs\.csv does not exist"):
        build_datasets(data_config(source="paired", pairs_file=str(tmp_path / "pairs.csv"), **SMALL))
    (tmp_path / "list.txt").write_text("a.png b.png\n")
    with pytest.raises(DataError, match=r"listed file .*a\.png does not exist"):
        build_datasets(data_config(source="paired", pairs_file=str(tmp_path / "list.txt"), **SMALL))


def test_bad_synthetic_photos_are_skipped_and_counted_under_the_skip_policy(photo_folder, capsys):
    (photo_folder / "broken.png").write_bytes(b"not a png at all")
    data = build_datasets(data_config(source="folder", sharp_dir=str(photo_folder), on_bad="skip", crop_size=24,
                                     kernel_size=5, val_crop_size=24, train_pairs_per_epoch=4))
    assert any("broken.png" in problem for problem in data.split["skipped"])
    assert "broken.png" not in " ".join(data.split["train"] + data.split["val"])
    assert "skipped 1 bad training photo(s)" in capsys.readouterr().err
    assert torch.isfinite(data.train[0]["blur"]).all()
