"""Data: photo sources, synthetic blur, and the datasets the engine trains and validates on."""

from core.errors import DataError
from core.images import list_images, read_image

from .build import build_datasets
from .config import DataConfig
from .sampler import EpochSampler

__all__ = ["DataConfig", "DataError", "EpochSampler", "build_datasets", "list_images", "read_image"]
