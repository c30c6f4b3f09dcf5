"""The rules that decide which pinned photos become training tiles, and at which reductions.

A manifest pins files by hand (photos, not renders or paintings: that is looked at once); these rules judge what
can be measured, so a new package's files are admitted or dropped the same way as the old ones':

- a JPEG saved at a low quality is dropped: its 8x8 blocking and ringing would be "sharp" targets the network
  learns to reproduce. The quality is estimated from the luminance quantisation table against the IJG/libjpeg
  standard table it is scaled from (exact for files libjpeg wrote, close for the rest);
- a photo whose shorter side is under ``min_side`` pixels is dropped (thumbnails and icons);
- JPEGs, and lossless files above ``FULL_SIZE_LIMIT`` pixels, are reduced (box filter) before tiling: a reduction
  averages blocking, sensor noise and the softness many wallpapers have at 100% away. Small lossless photos (the
  scikit-image textures) are sharp at full size and are tiled as they are;
- no training photo may look like a validation (benchmark) photo: a re-encoded or resized copy of a benchmark photo
  in another package would train on the test set. Photos are compared by the detail of a 32x32 grey thumbnail
  (its 5x5 local mean taken away): over the 111 pinned photos, unrelated pairs correlate at most 0.55, a benchmark
  photo resized to 70% and saved as a quality-70 JPEG at 0.998, a 1% crop of it at 0.94.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.ndimage import uniform_filter

# The IJG (libjpeg) luminance quantisation table at quality 50, which libjpeg scales for every other quality.
IJG_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99])
FULL_SIZE_LIMIT = 2_000_000  # pixels: lossless photos above it are reduced like JPEGs
MIN_JPEG_QUALITY = 70
MIN_SIDE = 400
LOOKALIKE_CORRELATION = 0.9


def jpeg_quality(image: Image.Image) -> float | None:
    """The IJG quality (1-100) a JPEG's luminance table corresponds to; None for other formats."""
    tables = getattr(image, "quantization", None)
    if image.format != "JPEG" or not tables:
        return None
    scale = 100 * float(np.sum(tables[0])) / float(IJG_LUMINANCE.sum())  # libjpeg's percentage scaling
    return (200 - scale) / 2 if scale <= 100 else 5000 / scale


def drop_reason(image: Image.Image, min_side: int = MIN_SIDE, min_quality: float = MIN_JPEG_QUALITY) -> str | None:
    """Why a training photo is left out (too small, too compressed), or None to keep it. ``image`` is the opened
    file (its format and tables are read), before any reduction."""
    quality = jpeg_quality(image)
    if quality is not None and quality < min_quality:
        return f"JPEG quality about {quality:.0f} < {min_quality:g}"
    if min(image.size) < min_side:
        return f"shorter side {min(image.size)} px < {min_side}"
    return None


def reductions(image: Image.Image, split: str, scales: tuple[int, ...]) -> tuple[int, ...]:
    """The reduction factors a photo is tiled at: validation photos at one fixed reduction (2, or none when
    lossless and small), training photos at every one of ``scales``."""
    lossless_small = image.format != "JPEG" and image.width * image.height <= FULL_SIZE_LIMIT
    if lossless_small:
        return (1,)
    return scales if split == "train" else (2,)


def thumbnail(image: Image.Image) -> np.ndarray:
    """The detail of a 32x32 grey thumbnail (high-passed, zero mean, unit norm), to compare photos whatever their
    size or encoding. The high-pass matters: plain thumbnails of two unrelated horizons correlate above 0.9."""
    small = np.asarray(image.convert("L").resize((32, 32), Image.Resampling.BOX), dtype=np.float64)
    small = (small - uniform_filter(small, 5, mode="nearest")).ravel()
    small = small - small.mean()
    norm = np.linalg.norm(small)
    return small / norm if norm > 0 else small


def lookalike(image: Image.Image, others: dict[str, np.ndarray]) -> str | None:
    """The name of the photo in ``others`` (name -> thumbnail) ``image`` looks like, or None."""
    mine = thumbnail(image)
    for name, theirs in others.items():
        if float(mine @ theirs) >= LOOKALIKE_CORRELATION:
            return name
    return None
