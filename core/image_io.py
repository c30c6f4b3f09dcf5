"""Reading a user's photo for inference and writing the result back in the same mode, bit depth and size.

Pillow reads everything except 16-bit colour, which it silently truncates to 8 bits; those files (PNG/TIFF) are
read and written with OpenCV instead. Grayscale is processed as RGB and written back as grayscale; alpha is kept
aside and written back untouched; EXIF orientation is applied, so the output is stored upright.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from core.errors import DataError, os_error_line
from core.files import replaced_atomically
from core.images import exif_orientation, open_image, orient_array

# OpenCV's TIFF reader warns on every extra-sample (alpha) file it reads correctly anyway.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
SIXTEEN_BIT_SUFFIXES = (".png", ".tif", ".tiff")
ALPHA_SUFFIXES = (".png", ".tif", ".tiff", ".webp")


@dataclass
class ImageInfo:
    gray: bool
    bits: int  # 8 or 16
    alpha: np.ndarray | None  # H x W, in the file's own dtype
    icc_profile: bytes | None = None
    converted_from: str | None = None  # a mode that cannot be written back faithfully (palette, CMYK)
    read_notes: list[str] = field(default_factory=list)  # what reading changed: frames dropped, values clipped


def read_image_for_inference(path: Path) -> tuple[torch.Tensor, ImageInfo]:
    """3 x H x W float32 RGB in [0, 1], and what is needed to write the result back like the input."""
    opencv_failed = False
    if path.suffix.lower() in SIXTEEN_BIT_SUFFIXES:
        orientation = exif_orientation(path)  # checks the pixel limit from the header before OpenCV decodes
        array = _opencv_decode(path)
        if array is not None and array.dtype == np.uint16 and array.ndim == 3:
            return _from_16bit_colour(orient_array(array, orientation))
        opencv_failed = array is None
    image = open_image(path)
    icc = image.info.get("icc_profile")
    notes = []
    depth = image.info.get("bits_per_sample", 8)
    if opencv_failed and image.mode in ("RGB", "RGBA") and depth > 8:
        notes.append(f"{path.name}: its {depth}-bit samples could not be decoded at full depth (OpenCV failed on "
                     "this TIFF); read through Pillow at 8 bits per channel")
    if image.info.get("frames", 1) > 1:
        notes.append(f"{path.name} holds {image.info['frames']} frames or pages; only the first is restored")
    if image.mode in GRAY_MODES:
        alpha = np.asarray(image.getchannel("A")) if image.mode == "LA" else None
        bits = 16 if image.mode.startswith("I") else 8
        if image.mode == "F" or image.mode == "I":
            raw = np.asarray(image, dtype=np.float32)
            scale = 1.0 if image.mode == "F" else 65535.0  # mode I: 16-bit samples Pillow widened to 32
            gray = np.clip(raw / scale, 0, 1)
            if np.isfinite(raw).all() and (raw.min() < 0 or raw.max() > scale):
                kind = "floating-point" if image.mode == "F" else "32-bit integer"
                notes.append(f"{path.name}: {kind} pixels span {raw.min():g} to {raw.max():g}; read as [0, {scale:g}],"
                             " the rest clipped")
        elif bits == 16:
            gray = np.asarray(image, dtype=np.float32) / 65535.0
        else:
            gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        rgb = np.repeat(gray[..., None], 3, axis=2)
        return _tensor(rgb, path), ImageInfo(True, bits, alpha, icc, read_notes=notes)
    has_alpha = image.mode in ("RGBA", "PA", "RGBa") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"))
        rgb = np.asarray(rgba.convert("RGB"), dtype=np.float32) / 255.0
    else:
        alpha = None
        rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0  # palette, CMYK, YCbCr -> RGB
    converted = image.mode if image.mode not in ("RGB", "RGBA") else None
    return _tensor(rgb, path), ImageInfo(False, 8, alpha, icc, converted, notes)


def _opencv_decode(path: Path) -> np.ndarray | None:
    """OpenCV's decode of the file's bytes (``cv2.imread`` crashes on file names that are not valid UTF-8)."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as error:
        raise DataError(f"cannot read image {path}: {error.strerror}") from None
    if not data.size:
        return None
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # a failure here is handled, not printed
    try:
        return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    finally:
        cv2.utils.logging.setLogLevel(level)


def _from_16bit_colour(array: np.ndarray) -> tuple[torch.Tensor, ImageInfo]:
    alpha = array[..., 3].copy() if array.shape[2] == 4 else None
    rgb = array[..., 2::-1].astype(np.float32) / 65535.0  # OpenCV stores BGR(A)
    return _tensor(rgb, "16-bit image"), ImageInfo(False, 16, alpha)


def _tensor(rgb: np.ndarray, path: Path | str) -> torch.Tensor:
    if not np.isfinite(rgb).all():
        raise DataError(f"image {path} contains non-finite values after decoding")
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))


def write_image_like(restored: torch.Tensor, info: ImageInfo, path: Path) -> list[str]:
    """Write a 3 x H x W [0, 1] result as the input was stored, as far as ``path``'s format allows.

    Returns notes on anything the format could not keep (16 bits in a JPEG, alpha in a BMP), never silently.
    """
    suffix = path.suffix.lower()
    notes = list(info.read_notes)
    notes += [f"{path.name}: {info.converted_from} input written as RGB"] if info.converted_from else []
    bits = info.bits
    if bits == 16 and suffix not in SIXTEEN_BIT_SUFFIXES:
        notes.append(f"{path.name}: {suffix} cannot hold 16 bits; written as 8-bit")
        bits = 8
    alpha = info.alpha
    if alpha is not None and suffix not in ALPHA_SUFFIXES:
        notes.append(f"{path.name}: {suffix} cannot hold alpha; alpha dropped")
        alpha = None
    if alpha is not None and alpha.dtype == np.uint16 and bits == 8:
        alpha = (alpha.astype(np.float32) / 257.0).round().astype(np.uint8)
    scale, dtype = (65535.0, np.uint16) if bits == 16 else (255.0, np.uint8)
    pixels = restored.detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
    if info.gray:
        pixels = pixels.mean(axis=2)
    pixels = np.round(pixels * scale).astype(dtype)
    if alpha is not None and alpha.dtype != dtype:
        alpha = (alpha.astype(np.float32) * (257.0 if dtype == np.uint16 else 1 / 257.0)).round().astype(dtype)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a file where a folder should be, a read-only disk
        raise DataError(f"output {path}: {os_error_line(error)}") from None
    if bits == 16 and not info.gray:
        channels = pixels[..., ::-1] if alpha is None else np.dstack([pixels[..., ::-1], alpha])
        with replaced_atomically(path) as partial:
            if not cv2.imwrite(str(partial), np.ascontiguousarray(channels)):
                raise DataError(f"cannot write image {path}")
        return notes
    if info.gray:
        image = Image.fromarray(pixels)  # uint8 -> "L", uint16 -> "I;16"
        if alpha is not None and bits == 8:
            image = Image.merge("LA", (image, Image.fromarray(alpha)))
        elif alpha is not None:
            notes.append(f"{path.name}: 16-bit grayscale with alpha is written without alpha")
    else:
        image = Image.fromarray(pixels)
        if alpha is not None:
            image = Image.merge("RGBA", (*image.split(), Image.fromarray(alpha)))
    options = {".jpg": {"quality": 95, "subsampling": 0}, ".jpeg": {"quality": 95, "subsampling": 0},
               ".webp": {"quality": 95}}.get(suffix, {})
    if info.icc_profile and suffix in (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp"):
        options["icc_profile"] = info.icc_profile
    try:
        with replaced_atomically(path) as partial:
            image.save(partial, **options)
    except (OSError, ValueError) as error:
        raise DataError(f"cannot write image {path}: {error}") from None
    return notes
