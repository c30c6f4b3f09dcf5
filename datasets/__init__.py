"""Data: photo sources, synthetic blur, and the datasets the engine trains and validates on."""

from .build import build_datasets
from .config import DataConfig
from .errors import DataError
from .images import list_images, read_image
from .sampler import EpochSampler

__all__ = ["DataConfig", "DataError", "EpochSampler", "build_datasets", "list_images", "read_image"]
