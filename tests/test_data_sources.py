"""GoPro, RealBlur and paired-folder layouts, splits, and paired augmentation."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from datasets import DataConfig, DataError, build_datasets
from datasets.augment import PairedAugment
from datasets.paired import Pair, PairedCrops, gopro_pairs
from helpers import data_config, save_pair

SMALL = dict(crop_size=32, val_crop_size=32, val_crops_per_photo=1, train_pairs_per_epoch=4)


def test_gopro_sequence_split_never_puts_one_sequence_on_both_sides(gopro_tree):
    for seed in range(5):
        data = build_datasets(DataConfig(source="gopro", root=str(gopro_tree), **SMALL), seed=seed)
        train_groups, val_groups = set(data.split["train_groups"]), set(data.split["val_groups"])
        assert train_groups and val_groups and not train_groups & val_groups
        assert len(train_groups | val_groups) == 6  # only the official train split; test stays unseen
        for blur, _ in data.split["train"]:
            assert "/train/" in blur and blur.split("/")[-3] in train_groups
        for blur, _ in data.split["val"]:
            assert blur.split("/")[-3] in val_groups
        assert len(data.split["val"]) == 3  # 15% of 6 sequences -> 1 whole sequence of 3 frames


def test_gopro_reads_blur_or_blur_gamma_and_the_test_split(gopro_tree):
    pairs, problems = gopro_pairs(gopro_tree, "test", "blur_gamma")
    assert len(pairs) == 6 and not problems
    assert all(p.blur.parent.name == "blur_gamma" and p.sharp.parent.name == "sharp" for p in pairs)
    data = build_datasets(DataConfig(source="gopro", root=str(gopro_tree), gopro_blur="blur_gamma", **SMALL))
    assert all("/blur_gamma/" in blur for blur, _ in data.split["train"])


@pytest.mark.parametrize("variant", ["J", "R"])
def test_realblur_list_files_pair_gt_with_blur_and_split_by_scene(realblur_tree, variant):
    data = build_datasets(DataConfig(source="realblur", root=str(realblur_tree), realblur_variant=variant, **SMALL))
    for blur, sharp in data.split["train"] + data.split["val"]:
        assert f"RealBlur-{variant}_" in blur and "/blur/blur_" in blur and "/gt/gt_" in sharp
        assert blur.split("/")[-3] == sharp.split("/")[-3]  # the same scene
    assert not set(data.split["train_groups"]) & set(data.split["val_groups"])
    sample = data.train[0]
    assert sample["blur"].shape == sample["sharp"].shape == (3, 32, 32)


def test_paired_folders_and_a_csv_list_give_the_same_pairs(paired_tree):
    from_folders = build_datasets(DataConfig(source="paired", root=str(paired_tree), **SMALL), seed=1)
    lines = ["blur,sharp"] + [
        f"blur/{p.parent.name}/{p.name},sharp/{p.parent.name}/{p.name}"
        for p in sorted((paired_tree / "blur").rglob("*.png"))
    ]
    (paired_tree / "pairs.csv").write_text("\n".join(lines) + "\n")
    from_list = build_datasets(DataConfig(source="paired", pairs_file=str(paired_tree / "pairs.csv"), **SMALL), seed=1)
    assert sorted(from_folders.split["train"] + from_folders.split["val"]) == sorted(
        from_list.split["train"] + from_list.split["val"]
    )
    (held_out,) = from_folders.split["val_groups"]  # one of three videos, whole
    assert len(from_folders.split["val"]) == 2 and all(f"/{held_out}/" in b for b, _ in from_folders.split["val"])


def test_a_flat_paired_folder_is_split_by_pair(tmp_path):
    rng = np.random.default_rng(0)
    for index in range(7):
        save_pair(tmp_path / "blur" / f"{index}.png", tmp_path / "sharp" / f"{index}.png", rng)
    data = build_datasets(DataConfig(source="paired", root=str(tmp_path), **SMALL))
    assert len(data.split["train"]) == 6 and len(data.split["val"]) == 1


def test_augmentation_moves_blur_and_sharp_identically(tmp_path):
    # The blurred file is exactly half the sharp one, so any geometric transform keeps blur == sharp / 2.
    rng = np.random.default_rng(4)
    sharp = rng.integers(0, 128, (40, 56, 3), dtype=np.uint8) * 2
    Image.fromarray(sharp).save(tmp_path / "s.png")
    Image.fromarray(sharp // 2).save(tmp_path / "b.png")
    crops = PairedCrops([Pair(tmp_path / "b.png", tmp_path / "s.png", "g")], 16, PairedAugment(24), seed=0)
    seen = set()
    for index in range(16):
        item = crops[index]
        assert torch.allclose(item["blur"] * 2, item["sharp"], atol=1e-6)
        seen.add(item["sharp"].numpy().tobytes())
    assert len(seen) > 8  # crops, flips and rotations really vary
    jitter = PairedAugment(24, color_jitter=0.2)
    image = sharp.astype(np.float32) / 255
    for seed in range(8):
        blur_out, sharp_out = jitter(image, image.copy(), seed=seed)
        assert np.array_equal(blur_out, sharp_out)


def test_training_items_are_reproducible_and_validation_is_not_augmented(gopro_tree):
    config = DataConfig(source="gopro", root=str(gopro_tree), color_jitter=0.1, **SMALL)
    first, second = build_datasets(config, seed=2), build_datasets(config, seed=2)
    assert torch.equal(first.train[3]["blur"], second.train[(0, 3)]["blur"])
    assert not torch.equal(first.train[3]["blur"], second.train[(1, 3)]["blur"])  # epoch 1 draws anew
    # Validation crops are plain crops of the files: same every time, never flipped or jittered.
    whole = build_datasets(DataConfig(source="gopro", root=str(gopro_tree), **{**SMALL, "val_crop_size": 0}))
    for item in whole.val:
        path = item["name"]
        expected = torch.from_numpy(np.asarray(Image.open(path), dtype=np.float32) / 255).permute(2, 0, 1)
        assert torch.equal(item["blur"], expected)


def test_images_smaller_than_the_crop_are_padded_identically(tmp_path):
    rng = np.random.default_rng(5)
    for index in range(3):
        save_pair(tmp_path / "blur" / f"{index}.png", tmp_path / "sharp" / f"{index}.png", rng, height=20, width=24)
    data = build_datasets(DataConfig(source="paired", root=str(tmp_path), **SMALL))
    item = data.train[0]
    assert item["blur"].shape == item["sharp"].shape == (3, 32, 32)
    # Identically: where both sides of a pair are the same image, every padded, cropped and augmented item is
    # the same on both sides, pixel for pixel (any difference would be a misaligned pad or crop).
    for index in range(3):
        shutil.copyfile(tmp_path / "sharp" / f"{index}.png", tmp_path / "blur" / f"{index}.png")
    same = build_datasets(DataConfig(source="paired", root=str(tmp_path), **SMALL))
    for key in range(len(same.train)):
        item = same.train[key]
        assert item["blur"].shape == (3, 32, 32) and torch.equal(item["blur"], item["sharp"])
        assert item["sharp"].flatten(1).std(dim=1).min() > 0  # a real photo, not a constant fill


def test_split_needs_two_groups_or_pairs(tmp_path):
    save_pair(tmp_path / "blur" / "0.png", tmp_path / "sharp" / "0.png", np.random.default_rng(0))
    with pytest.raises(DataError, match="cannot be split"):
        build_datasets(DataConfig(source="paired", root=str(tmp_path), **SMALL))


@pytest.mark.parametrize("source", ["folder", "gopro"])
def test_the_pair_seed_draws_new_pairs_from_the_same_held_out_split(source, photo_folder, gopro_tree):
    config = (data_config(source="folder", sharp_dir=str(photo_folder), val_fraction=0.4, crop_size=24,
                          val_crop_size=24, kernel_size=5, train_pairs_per_epoch=4)
              if source == "folder" else DataConfig(source="gopro", root=str(gopro_tree), **SMALL))
    first = build_datasets(config, seed=3)
    again, later = build_datasets(config, seed=3, pair_seed=3), build_datasets(config, seed=3, pair_seed=3 + 4000)
    assert later.split["val"] == first.split["val"] and later.split["train"] == first.split["train"]
    assert torch.equal(again.train[0]["blur"], first.train[0]["blur"])  # pair_seed defaults to the seed
    assert not torch.equal(later.train[0]["blur"], first.train[0]["blur"])
    # The seed does choose the split (some other seeds hold out other photos).
    assert any(build_datasets(config, seed=seed).split["val"] != first.split["val"] for seed in range(4, 12))
