"""Blurred/sharp pairs made on the fly from sharp photos, each returned with its kernel."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from core.errors import DataError
from core.images import array_to_tensor, quantize_8bit, tensor_to_array

from .augment import PairedAugment
from .blur import NOISE_SPACES, synthesize
from .degradation import DegradationSpec, spec_values
from .kernels import KernelMix
from .sampler import Key, split_key
from .spatially_varying import shake_field

FIELD_KIND = "shake_field"  # the kind recorded for a spatially varying pair

PhotoSource = Callable[[int], torch.Tensor]


@dataclass
class Degradation(DegradationSpec):
    """How a sharp window becomes a blurred observation: a kernel from ``kernels`` (motion extents in
    ``blur_extent`` pixels) plus optional over-exposure, shot noise, read noise (in ``noise_space``) and JPEG
    re-compression of the blurred image (quality uniform in ``jpeg_quality``, with ``jpeg_probability``), all
    drawn from the generator it is given (see ``blur.synthesize``). ``quantize`` rounds the blurred image to 8-bit
    levels, as every PNG or JPEG a user (or a benchmark) hands the model is; it draws nothing. Draws for a feature
    that is off are not made, so older settings keep their exact random streams.

    The settings are ``DegradationSpec``'s (one definition, validated there); ``Degradation.of(spec)`` makes the
    one a config or preset describes. A field (``field_probability``) is a walk plus a camera roll rendered on a
    ``field_grid`` x ``field_grid`` lattice of kernels (``spatially_varying.shake_field``), its extents following
    ``blur_extent`` (default 5 to kernel_size - 3 px). A kernel bank draws ``kernel_bank`` kernels from the mix once
    (seeded by ``kernel_bank_seed``), so how hard a family is to learn can be measured against its size."""

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise DataError(f"degradation: {problems[0]}")
        extent = tuple(self.blur_extent) if self.blur_extent is not None else None
        self.mix = KernelMix(self.kernel_size, dict(self.kernels), extent, self.blur_extent_law)
        bank_rng = np.random.default_rng([self.kernel_bank_seed, self.kernel_bank])
        self.bank = [self.mix(bank_rng) for _ in range(self.kernel_bank)]

    @classmethod
    def of(cls, spec: DegradationSpec) -> "Degradation":
        return cls(**spec_values(spec))

    def __call__(
        self, window: torch.Tensor, rng: np.random.Generator, deferred: bool = False
    ) -> dict[str, torch.Tensor | str]:
        """``window``: 3 x (crop + k - 1)^2 sRGB; returns blur and sharp (3 x crop^2), kernel (k x k), its kind.

        ``deferred``: draw everything but do not blur; returns the window, kernel and per-pair levels (gain, shot
        noise peak, read noise sigma, 1 where the read noise is in sRGB, JPEG quality or 0) for
        ``synthesize_batch`` to apply to a whole batch on the training device.
        """
        kernel, kind = self._draw_kernel(window, rng)
        gain = 1.0 + self.saturation * rng.random()
        peak = self.poisson_peak * 10 ** (2 * rng.random()) if self.poisson_peak > 0 else 0.0
        sigma = self.noise_sigma * rng.random()
        noise_space = self.noise_space
        if noise_space == "mixed":
            noise_space = NOISE_SPACES[int(rng.integers(len(NOISE_SPACES)))]
        seed = int(rng.integers(2**62))
        quality = self._draw_jpeg_quality(rng)
        if deferred:
            if kind == FIELD_KIND:
                raise DataError("spatially varying blur runs in the loader workers: turn data.blur_on_device off")
            srgb = float(noise_space == "srgb")
            levels = torch.tensor([gain, peak, sigma, srgb, quality], dtype=torch.float32)
            return {"window": window, "kernel": kernel, "levels": levels, "kind": kind}
        generator = torch.Generator().manual_seed(seed)
        blurred, sharp = synthesize(window[None], kernel[None], gain, peak, sigma, generator, noise_space)
        blurred = blurred[0] if not quality else jpeg_roundtrip(blurred[0], quality)
        if self.quantize:
            blurred = quantize_8bit(blurred)
        return {"blur": blurred, "sharp": sharp[0], "kernel": kernel, "kind": kind, "noise_space": noise_space}

    def _draw_kernel(self, window: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, str]:
        """One kernel from the mix, or (with ``field_probability``) a ``field_grid`` x ``field_grid`` kernel field
        for the window's output size. No draw is made for the field when its probability is 0."""
        if self.field_probability > 0 and rng.random() < self.field_probability:
            height, width = window.shape[-2] - self.margin, window.shape[-1] - self.margin
            extent = tuple(self.blur_extent) if self.blur_extent is not None else (5.0, self.kernel_size - 3.0)
            field = shake_field(self.kernel_size, self.field_grid, height, width, rng, extent, self.max_roll_degrees)
            return field, FIELD_KIND
        if self.bank:
            return self.bank[int(rng.integers(len(self.bank)))]
        return self.mix(rng)

    def _draw_jpeg_quality(self, rng: np.random.Generator) -> int:
        """0 for no re-compression."""
        if self.jpeg_quality is None:
            return 0
        if rng.random() >= self.jpeg_probability:
            return 0
        return int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))


def jpeg_roundtrip(image: torch.Tensor, quality: int) -> torch.Tensor:
    """``image`` (3 x H x W in [0, 1]) saved as a baseline 4:2:0 JPEG of ``quality`` and decoded again, as a
    phone or browser re-compresses a photo (8-bit, with chroma subsampling and block artefacts)."""
    buffer = io.BytesIO()
    Image.fromarray((tensor_to_array(image) * 255).round().astype(np.uint8)).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return array_to_tensor(np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255)


def synthesize_batch(
    batch: dict[str, torch.Tensor], device: torch.device, quantize: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(blurred, sharp) on ``device`` from a collated batch of deferred items (``data.blur_on_device``): the same
    degradation as the loader workers apply pair by pair, with each pair's read noise in its own space. The few
    pairs drawn for JPEG re-compression make a round trip through the CPU's encoder, exactly as in the workers."""
    windows = batch["window"].to(device, non_blocking=True)
    kernels = batch["kernel"].to(device, non_blocking=True)
    gain, peak, sigma, srgb, quality = batch["levels"].to(device, non_blocking=True).unbind(1)
    blurred, sharp = synthesize(windows, kernels, gain, peak, sigma, noise_space=srgb > 0.5)
    for index in torch.nonzero(quality > 0).flatten().tolist():
        roundtrip = jpeg_roundtrip(blurred[index].float().cpu(), int(quality[index]))
        blurred[index] = roundtrip.to(device=device, dtype=blurred.dtype)
    return (quantize_8bit(blurred) if quantize else blurred), sharp


def _window(photo: torch.Tensor, size: int, rng: np.random.Generator, name: str) -> torch.Tensor:
    height, width = photo.shape[-2:]
    if height < size or width < size:
        raise DataError(
            f"photo {name} is {width}x{height}, smaller than the crop plus kernel margin ({size}x{size}); "
            "lower data.crop_size or data.degradation.kernel_size"
        )
    top = int(rng.integers(height - size + 1))
    left = int(rng.integers(width - size + 1))
    return photo[:, top : top + size, left : left + size]


class SyntheticBlurPairs(Dataset):
    """``length`` random pairs per epoch: a random window of a random photo, augmented, then degraded.

    Every item is a pure function of (seed, epoch, index): runs are reproducible whatever the number of loader
    workers, and a resumed run can regenerate exactly the pairs it would have seen. Keys are (epoch, index)
    (see ``sampler.EpochSampler``): each epoch draws new pairs. Augmentation (flips, rotations, colour jitter)
    is applied to the sharp window before blurring, which moves both images of the pair identically by
    construction.
    """

    def __init__(
        self,
        photos: Sequence[torch.Tensor] | PhotoSource,
        num_photos: int,
        crop_size: int,
        length: int,
        degradation: Degradation,
        seed: int = 0,
        augment: PairedAugment | None = None,
        describe: Callable[[int], str] = str,
        blur_on_device: bool = False,
        leaves: Callable[[int, np.random.Generator], torch.Tensor] | None = None,
        leaves_share: float = 0.0,
    ):
        self.load = photos if callable(photos) else photos.__getitem__
        self.num_photos = num_photos
        self.crop_size = crop_size
        self.length = length
        self.degradation = degradation
        self.seed = seed
        self.augment = augment
        self.describe = describe
        self.blur_on_device = blur_on_device
        self.leaves, self.leaves_share = leaves, leaves_share  # a procedural source for that share of the pairs

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: int | Key) -> dict[str, torch.Tensor | str]:
        epoch, index = split_key(key)
        rng = np.random.default_rng([self.seed, epoch, index])
        size = self.crop_size + self.degradation.margin
        # The draw is made only where a procedural source is configured, so photo-only runs keep their streams.
        if self.leaves is not None and rng.random() < self.leaves_share:
            window = self.leaves(size, rng)
        else:
            photo_index = int(rng.integers(self.num_photos))
            window = _window(self.load(photo_index), size, rng, self.describe(photo_index))
        if self.augment is not None:
            array = np.ascontiguousarray(tensor_to_array(window))
            window = array_to_tensor(self.augment(array, seed=int(rng.integers(2**31))))
        return self.degradation(window, rng, deferred=self.blur_on_device)


class FixedPairs(Dataset):
    """A validation set made once from seeded windows and degradations: identical on every run, not augmented."""

    def __init__(
        self,
        photos: Sequence[torch.Tensor],
        crop_size: int,
        crops_per_photo: int,
        degradation: Degradation,
        seed: int = 12345,
        names: Sequence[str] | None = None,
    ):
        names = names or [f"photo {i}" for i in range(len(photos))]
        size = crop_size + degradation.margin
        rng = np.random.default_rng(seed)
        self.pairs = []
        for photo, name in zip(photos, names):
            for _ in range(crops_per_photo):
                window = _window(photo, size, rng, f"{name} (validation)")
                self.pairs.append({**degradation(window, rng), "name": name})

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        return self.pairs[index]
