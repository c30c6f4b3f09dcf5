"""A fixed family of kernels (data.kernel_bank): the yardstick of how hard a family of blurs is to learn."""

import re

import pytest
import torch

from datasets import DataConfig, build_datasets
from datasets.degradation import DegradationSpec
from gan.config import load_config
from gan.errors import ConfigError

SETTINGS = dict(source="folder", crop_size=32, train_pairs_per_epoch=40, val_crop_size=32, val_crops_per_photo=2)
SHAKE = dict(kernel_size=15, kernels={"trajectory": 1.0}, blur_extent=[5, 12])


def _config(folder, **bank) -> DataConfig:
    return DataConfig(sharp_dir=str(folder), degradation=DegradationSpec(**SHAKE, **bank), **SETTINGS)


def _kernels(dataset) -> list[torch.Tensor]:
    return [dataset[(0, index)]["kernel"] for index in range(len(dataset))]


def _index_in(bank: list[torch.Tensor], kernel: torch.Tensor) -> int:
    return next(i for i, member in enumerate(bank) if torch.equal(member, kernel))


@pytest.mark.parametrize("size", [1, 3])
def test_every_pair_is_blurred_by_one_kernel_of_the_bank_training_and_validation_alike(photo_folder, size):
    config = _config(photo_folder, kernel_bank=size, kernel_bank_seed=4)
    data = build_datasets(config, seed=0)
    bank = [kernel for kernel, _ in data.train.degradation.bank]
    assert len(bank) == size and len({k.numpy().tobytes() for k in bank}) == size
    used = {_index_in(bank, kernel) for kernel in _kernels(data.train)}
    assert used == set(range(size))  # 40 pairs reach each of three kernels
    assert {_index_in(bank, data.val[i]["kernel"]) for i in range(len(data.val))} <= set(range(size))
    # Without a bank, forty pairs see forty different kernels.
    free = build_datasets(_config(photo_folder), seed=0)
    assert len({k.numpy().tobytes() for k in _kernels(free.train)}) == len(free.train)


def test_the_bank_is_a_function_of_its_seed(photo_folder):
    def bank(seed):
        config = _config(photo_folder, kernel_bank=4, kernel_bank_seed=seed)
        return [k.numpy().tobytes() for k, _ in build_datasets(config, seed=0).train.degradation.bank]

    assert bank(1) == bank(1) and bank(1) != bank(2)


@pytest.mark.parametrize("setting, message", [
    ("data.kernel_bank=-1", "data.degradation.kernel_bank must be in [0, 100000]"),
    ("data.kernel_bank=1000000", "data.degradation.kernel_bank must be in [0, 100000]"),
    ("data.kernel_bank_seed=-3", "data.degradation.kernel_bank_seed must be in [0, 2**63)"),
])
def test_a_bad_bank_is_one_config_error(setting, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, [setting])
