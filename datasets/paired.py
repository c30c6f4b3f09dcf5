"""Real blurred/sharp pairs: GoPro, RealBlur, HIDE, and generic paired folders or lists.

Each layout is turned into a list of ``Pair``s carrying a *group* (GoPro sequence, RealBlur scene, sub-folder):
validation holds out whole groups, because neighbouring frames of one sequence are near-identical and would leak.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from core.errors import DataError
from core.images import CachedImages, array_to_tensor, image_files, image_size, read_array

from .augment import PairedAugment
from .sampler import Key, split_key


@dataclass(frozen=True)
class Pair:
    blur: Path
    sharp: Path
    group: str


def _folder(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataError(f"{what} {path} does not exist or is not a folder")
    return path


def _images_by_name(folder: Path) -> dict[str, Path]:
    return {str(p.relative_to(folder)): p for p in image_files(folder)}


def match_folders(blur_dir: Path, sharp_dir: Path, group_of) -> tuple[list[Pair], list[str]]:
    """Pairs of files with the same relative path in both folders; a file with no partner is a problem."""
    blurs, sharps = _images_by_name(blur_dir), _images_by_name(sharp_dir)
    problems = [f"{blurs[n]} has no partner in {sharp_dir}" for n in sorted(set(blurs) - set(sharps))]
    problems += [f"{sharps[n]} has no partner in {blur_dir}" for n in sorted(set(sharps) - set(blurs))]
    pairs = [Pair(blurs[n], sharps[n], group_of(n)) for n in sorted(set(blurs) & set(sharps))]
    return pairs, problems


def gopro_pairs(root: str | Path, split: str, blur_folder: str = "blur") -> tuple[list[Pair], list[str]]:
    """``GOPRO_Large/{train,test}/<sequence>/{blur,blur_gamma,sharp}/*.png``; the group is the sequence."""
    base = _folder(Path(root).expanduser() / split, f"GoPro {split} folder")
    sequences = sorted(d for d in base.iterdir() if d.is_dir())
    if not sequences:
        raise DataError(f"GoPro {split} folder {base} has no sequence folders (<sequence>/{blur_folder}, "
                        "<sequence>/sharp)")
    pairs, problems = [], []
    for sequence in sequences:
        blur_dir, sharp_dir = sequence / blur_folder, sequence / "sharp"
        if not blur_dir.is_dir() or not sharp_dir.is_dir():
            problems.append(f"GoPro sequence {sequence} lacks {blur_folder}/ or sharp/")
            continue
        found, missing = match_folders(blur_dir, sharp_dir, lambda name, s=sequence.name: s)
        pairs += found
        problems += missing
    return pairs, problems


HIDE_TEST_SUBSETS = ("test-close", "test-long")


def hide_pairs(root: str | Path, split: str) -> tuple[list[Pair], list[str]]:
    """HIDE (Shen et al. 2019): ``HIDE_dataset/train/*.png`` and ``test/{test-close,test-long}/*.png`` blurred,
    their sharp frames under the same names in ``GT/``. The group is the subset (train, test-close, test-long):
    close-ups and long shots are reported apart, as in the paper."""
    root = Path(root).expanduser()
    sharp_dir = _folder(root / "GT", "HIDE ground-truth folder")
    blur_dirs = [root / "train"] if split == "train" else [root / "test" / s for s in HIDE_TEST_SUBSETS]
    pairs, problems = [], []
    sharps = {p.name: p for p in image_files(sharp_dir)}
    for blur_dir in blur_dirs:
        for blur in image_files(_folder(blur_dir, f"HIDE {blur_dir.name} folder")):
            if blur.name in sharps:
                pairs.append(Pair(blur, sharps[blur.name], blur_dir.name))
            else:
                problems.append(f"{blur} has no partner in {sharp_dir}")
    return pairs, problems


def _inside(path: Path, base: Path) -> bool:
    resolved, base = path.resolve(), base.resolve()
    return resolved == base or base in resolved.parents


def _outside_message(listing: Path, number: int, field: str, base: Path) -> str:
    return (f"{listing}:{number}: {field!r} points outside {base}; list files may only name files below their "
            "folder (set data.allow_outside_paths=true to allow it)")


def realblur_pairs(
    root: str | Path, variant: str, split: str, allow_outside: bool = False
) -> tuple[list[Pair], list[str]]:
    """RealBlur's ``RealBlur_{J,R}_{train,test}_list.txt``: lines of "sharp_path blur_path" relative to ``root``
    (ground truth first, as the dataset ships them); the group is the scene folder."""
    root = Path(root).expanduser()
    listing = root / f"RealBlur_{variant}_{split}_list.txt"
    if not listing.is_file():
        raise DataError(f"RealBlur list file {listing} does not exist (data.root must hold the RealBlur_*_list.txt "
                        "files)")
    pairs, problems = [], []
    for number, line in enumerate(listing.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            problems.append(f"{listing}:{number}: expected 'sharp_path blur_path', got {line.strip()!r}")
            continue
        sharp, blur = root / fields[0], root / fields[1]
        if not allow_outside:
            outside = [f for f, p in zip(fields[:2], (sharp, blur)) if not _inside(p, root)]
            if outside:
                raise DataError(_outside_message(listing, number, outside[0], root))
        pairs.append(Pair(blur, sharp, group=str(Path(fields[0]).parent.parent)))
    return _existing(pairs, problems)


def list_file_pairs(path: str | Path, allow_outside: bool = False) -> tuple[list[Pair], list[str]]:
    """A CSV or whitespace-separated text file of "blur, sharp" paths, relative to the list file's folder.
    A first line naming the columns (blur, sharp) is skipped. The group is the blurred image's folder. Paths that
    lead outside that folder (``..``, absolute paths, links) are refused unless ``allow_outside``: a shared or
    downloaded list should not reach into the rest of the disk."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"pairs file {path} does not exist")
    pairs, problems = [], []
    lines = path.read_text().splitlines()
    rows = csv.reader(lines) if "," in "".join(lines[:5]) else (line.split() for line in lines)
    for number, row in enumerate(rows, 1):
        row = [field.strip() for field in row if field.strip()]
        if not row or (number == 1 and [f.lower() for f in row[:2]] == ["blur", "sharp"]):
            continue
        if len(row) != 2:
            problems.append(f"{path}:{number}: expected two paths (blur, sharp), got {len(row)} fields")
            continue
        blur, sharp = path.parent / row[0], path.parent / row[1]
        if not allow_outside:
            outside = [f for f, p in zip(row, (blur, sharp)) if not _inside(p, path.parent)]
            if outside:
                raise DataError(_outside_message(path, number, outside[0], path.parent))
        pairs.append(Pair(blur, sharp, group=str(Path(row[0]).parent)))
    if not pairs and not problems:
        raise DataError(f"pairs file {path} lists no pairs")
    return _existing(pairs, problems)


def paired_folder_pairs(root: str | Path) -> tuple[list[Pair], list[str]]:
    """``root/blur`` and ``root/sharp`` with the same relative file names. With sub-folders (e.g. one per video)
    each is a group; in a flat folder every pair is its own group."""
    root = Path(root).expanduser()
    blur_dir = _folder(root / "blur", "paired data folder")
    sharp_dir = _folder(root / "sharp", "paired data folder")
    return match_folders(blur_dir, sharp_dir, lambda name: str(Path(name).parent))


def _existing(pairs: list[Pair], problems: list[str]) -> tuple[list[Pair], list[str]]:
    kept = []
    for pair in pairs:
        missing = [str(p) for p in (pair.blur, pair.sharp) if not p.is_file()]
        if missing:
            problems.append(f"listed file {missing[0]} does not exist")
        else:
            kept.append(pair)
    return kept, problems


def hold_out(names: list, val_fraction: float, seed: int) -> set:
    """The seeded ``val_fraction`` of ``names`` (sorted, at least 2) held out for validation: at least one, never
    all. The one rule for every split: photo folders, GoPro sequences, RealBlur scenes, paired folders."""
    order = np.random.default_rng(seed).permutation(len(names))
    num_val = min(len(names) - 1, max(1, round(val_fraction * len(names))))
    return {names[i] for i in order[:num_val]}


def split_by_group(pairs: list[Pair], val_fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Hold out ``val_fraction`` of the groups (at least one, never all), chosen by ``seed``. A single group
    (a flat folder) is split by pair instead."""
    groups = sorted({pair.group for pair in pairs})
    key = (lambda pair: pair.group) if len(groups) > 1 else (lambda pair: str(pair.blur))
    names = groups if len(groups) > 1 else sorted(str(pair.blur) for pair in pairs)
    if len(names) < 2:
        raise DataError(f"{len(pairs)} pair(s) cannot be split into training and validation; add more pairs")
    held_out = hold_out(names, val_fraction, seed)
    return [p for p in pairs if key(p) not in held_out], [p for p in pairs if key(p) in held_out]


def check_pairs(pairs: list[Pair]) -> tuple[list[Pair], list[str]]:
    """Header checks of every pair, before training: both files readable (PNG integrity verified) and of equal
    size once EXIF orientation is applied. Returns the good pairs and one message per bad one."""
    good, problems = [], []
    for pair in pairs:
        try:
            blur_size = image_size(pair.blur, verify=True)
            sharp_size = image_size(pair.sharp, verify=True)
        except DataError as error:
            problems.append(str(error))
            continue
        if blur_size != sharp_size:
            problems.append(
                f"pair sizes differ: {pair.blur} is {blur_size[0]}x{blur_size[1]}, "
                f"{pair.sharp} is {sharp_size[0]}x{sharp_size[1]}"
            )
            continue
        good.append(pair)
    return good, problems


class PairedCrops(Dataset):
    """Training crops of real pairs: ``length`` items per epoch walking a seeded per-epoch permutation of the
    pairs, each cropped and augmented identically on both sides. Items are pure functions of (seed, epoch, index).
    Images smaller than the crop are reflect-padded, the same way on both sides."""

    def __init__(self, pairs: list[Pair], length: int, augment: PairedAugment, seed: int = 0):
        if not pairs:
            raise DataError("no training pairs are left")
        self.pairs = pairs
        self.length = length or len(pairs)
        self.augment = augment
        self.seed = seed
        self._orders: dict[int, np.ndarray] = {}

    def _order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            self._orders = {epoch: np.random.default_rng([self.seed, epoch]).permutation(len(self.pairs))}
        return self._orders[epoch]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: int | Key) -> dict[str, torch.Tensor | str]:
        epoch, index = split_key(key)
        pair = self.pairs[self._order(epoch)[index % len(self.pairs)]]
        blur, sharp = read_array(pair.blur), read_array(pair.sharp)
        if blur.shape != sharp.shape:  # headers were checked; this catches files changed since
            raise DataError(f"pair sizes differ: {pair.blur} {blur.shape[:2]} vs {pair.sharp} {sharp.shape[:2]}")
        seed = int(np.random.default_rng([self.seed, epoch, index]).integers(2**31))
        blur, sharp = self.augment(blur, sharp, seed=seed)
        return {"blur": array_to_tensor(blur), "sharp": array_to_tensor(sharp), "name": str(pair.blur)}


class PairedValidation(Dataset):
    """Fixed validation crops (seeded positions, no augmentation) or whole images when ``crop_size`` is 0."""

    def __init__(self, pairs: list[Pair], crop_size: int, crops_per_pair: int, seed: int = 12345):
        if not pairs:
            raise DataError("no validation pairs are left")
        self.items = [(pair, crop) for pair in pairs for crop in range(crops_per_pair if crop_size else 1)]
        self.crop = PairedAugment(crop_size, flips=False, rot90=False) if crop_size else None
        self.seed = seed
        self.read = CachedImages(read_array, maxsize=2)  # the crops of one pair are consecutive items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        pair, crop = self.items[index]
        blur, sharp = self.read(pair.blur), self.read(pair.sharp)
        if self.crop is not None:
            blur, sharp = self.crop(blur, sharp, seed=self.seed + index)
        return {"blur": array_to_tensor(blur), "sharp": array_to_tensor(sharp), "name": str(pair.blur)}
