"""The dead-leaves source: seeded, covering, natural-looking statistics, and mixed with photos by share."""

import numpy as np
import pytest
import torch

from datasets import build_datasets
from datasets.dead_leaves import DeadLeaves, photo_palette
from gan.config import load_config
from gan.errors import ConfigError
from helpers import data_config

PALETTE = np.random.default_rng(0).random((256, 3)).astype(np.float32)


def test_an_image_is_a_function_of_its_generator():
    leaves = DeadLeaves(PALETTE)
    first = leaves(96, np.random.default_rng([3, 1]))
    assert torch.equal(first, leaves(96, np.random.default_rng([3, 1])))
    assert not torch.equal(first, leaves(96, np.random.default_rng([3, 2])))


def test_statistics_are_within_their_stated_bounds():
    leaves = DeadLeaves(PALETTE, defocus_probability=0.0, texture=0.0)
    images = [leaves(128, np.random.default_rng(seed)) for seed in range(8)]
    for image in images:
        assert image.shape == (3, 128, 128) and image.dtype == torch.float32
        assert 0 <= image.min() and image.max() <= 1
        # Flat shapes painted from the palette: every pixel is one of its colours.
        colours = {tuple(c) for c in np.round(PALETTE, 5)}
        pixels = {tuple(p) for p in np.round(image.reshape(3, -1).T.numpy(), 5)}
        assert pixels <= colours
        # Many shapes are seen, small and large: dozens of distinct colours, and edges at every scale.
        assert len(pixels) > 40
    # A scale-invariant image: the spectrum falls as a power of frequency, near 1/f^2 for dead leaves.
    power = np.mean([np.abs(np.fft.fft2(image.mean(0).numpy() - image.mean().item())) ** 2 for image in images], 0)
    frequency = np.hypot(*np.meshgrid(np.fft.fftfreq(128), np.fft.fftfreq(128), indexing="ij"))
    band = (frequency > 0.02) & (frequency < 0.4)
    slope = np.polyfit(np.log(frequency[band]), np.log(power[band]), 1)[0]
    assert -3.5 < slope < -1.5, slope


def test_defocus_blurs_the_layers_behind():
    sharp = DeadLeaves(PALETTE, defocus_probability=0.0, texture=0.0)
    soft = DeadLeaves(PALETTE, defocus_probability=1.0, texture=0.0, max_defocus=3.0)

    def edge_energy(generator):
        images = [generator(128, np.random.default_rng(seed)).mean(0) for seed in range(6)]
        return np.mean([np.abs(np.diff(image.numpy(), axis=1)).mean() for image in images])

    assert edge_energy(soft) < edge_energy(sharp)


def test_the_palette_comes_from_the_photos():
    photo = torch.zeros(3, 10, 10)
    photo[0] = 1.0  # pure red
    palette = photo_palette([photo], colours=50)
    assert palette.shape == (50, 3) and np.all(palette == [1, 0, 0])


def test_a_share_of_training_pairs_is_leaves_and_validation_stays_on_photos(photo_folder):
    settings = dict(source="folder", sharp_dir=str(photo_folder), crop_size=32, kernel_size=9,
                    train_pairs_per_epoch=200, val_crop_size=32, val_crops_per_photo=1)
    photos = build_datasets(data_config(**settings), seed=0)
    mixed = build_datasets(data_config(leaves=0.5, **settings), seed=0)
    assert mixed.train.leaves is not None and photos.train.leaves is None
    # Validation is the same photo crops either way.
    assert all(torch.equal(a["sharp"], b["sharp"]) for a, b in zip(photos.val, mixed.val))
    # The share: with the generator swapped for one that paints a flat grey, count the grey pairs.
    mixed.train.leaves = lambda size, rng: torch.full((3, size, size), 0.5)
    grey = sum(bool(torch.allclose(mixed.train[(0, i)]["sharp"], torch.tensor(0.5))) for i in range(200))
    assert 70 <= grey <= 130  # 100 expected of 200 at a share of 0.5


@pytest.mark.parametrize("setting, message", [("data.leaves=1.5", "data.leaves must be a share in"),
                                              ("data.leaves=-0.1", "data.leaves must be a share in")])
def test_a_bad_share_is_one_config_error(setting, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [setting])
