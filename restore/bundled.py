"""The models shipped in weights/: where they are and what each is called. Each file is listed with its sha256 in
weights/SHA256SUMS and checked on every load (core.checkpoint.verify); release.bundled writes them."""

from __future__ import annotations

from pathlib import Path

from core.resources import resource_dir

WEIGHTS_DIR = resource_dir("weights")
BUNDLED_MODELS = {"pretrain": "light_unet_pretrain.pt", "gan": "light_unet_gan.pt"}
FORMAT = "lightdeblur-weights-1"


def bundled_path(model: str) -> Path:
    """The file of bundled model ``model`` ("pretrain" or "gan")."""
    return WEIGHTS_DIR / BUNDLED_MODELS[model]
