"""Progressive crops (``train.crop_schedule``): smaller windows of each training pair early in a run, cheaper steps
that see more pairs per minute, larger ones later for context. The windows are cut from the pairs the loader made
at ``data.crop_size``: the blur inside a window is exactly the blur of the larger pair, so every window is a valid
pair whatever its size."""

from __future__ import annotations

import torch


def crop_at(schedule: list[list[float]], progress: float) -> int | None:
    """The crop size in force at ``progress`` (0 to 1) of a run; None without a schedule."""
    crop = None
    for start, size in schedule:
        if progress >= start:
            crop = int(size)
    return crop


def random_windows(blur: torch.Tensor, sharp: torch.Tensor, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same ``size`` x ``size`` window of each pair's blurred and sharp image, at a position drawn per pair from
    ``seed`` (its own generator: the global random stream, which a resumed run restores, is left alone)."""
    height, width = blur.shape[-2:]
    if size >= height and size >= width:
        return blur, sharp
    generator = torch.Generator().manual_seed(seed)
    tops = torch.randint(0, height - size + 1, (blur.shape[0],), generator=generator).tolist()
    lefts = torch.randint(0, width - size + 1, (blur.shape[0],), generator=generator).tolist()
    blur = torch.stack([b[:, y:y + size, x:x + size] for b, y, x in zip(blur, tops, lefts)])
    sharp = torch.stack([s[:, y:y + size, x:x + size] for s, y, x in zip(sharp, tops, lefts)])
    return blur, sharp
