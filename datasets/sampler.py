"""The order of training items: (epoch, index) keys drawn in the main process.

Training items are pure functions of (seed, epoch, index) (see ``SyntheticBlurPairs`` and ``PairedCrops``). The
epoch travels inside each key rather than as dataset state: DataLoader workers, persistent ones above all, hold
their own copy of the dataset, so an epoch set on the main process's copy would never reach them (they would draw
epoch 0's pairs forever). A sampler is iterated in the main process, so its fields are always current.
"""

from __future__ import annotations

from typing import Iterator

from torch.utils.data import Sampler

Key = tuple[int, int]


def split_key(key: int | Key) -> Key:
    """(epoch, index) from a sampler key; a plain index means epoch 0 (direct use: ``dataset[3]``)."""
    return key if isinstance(key, tuple) else (0, key)


class EpochSampler(Sampler[Key]):
    """Keys (epoch, start), ..., (epoch, length - 1), each rank taking every ``world_size``-th one.

    ``start`` lets a resumed run skip the items its interrupted predecessor already trained on in this epoch.
    """

    def __init__(self, length: int, rank: int = 0, world_size: int = 1):
        self.length, self.rank, self.world_size = length, rank, world_size
        self.epoch = 0
        self.start = 0  # position in this rank's share of the epoch

    def _indices(self) -> range:
        return range(self.rank, self.length, self.world_size)

    def __iter__(self) -> Iterator[Key]:
        return ((self.epoch, index) for index in self._indices()[self.start :])

    def __len__(self) -> int:
        return len(self._indices()[self.start :])
