"""Reading photos into [0, 1] RGB float tensors, whatever their mode, bit depth or EXIF orientation."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DataError

ORIENTATION_TAG = 0x0112  # EXIF
# The largest image we decode, in pixels (a 200-megapixel photo is about 2.4 GB as float32 RGB). A file that declares
# more is refused before it is decoded: a "decompression bomb" of a few KB can declare gigapixels. Raise it with
# the environment variable LIGHTDEBLUR_MAX_PIXELS. Pillow's own, smaller limit is replaced by this one.
DEFAULT_MAX_PIXELS = 200_000_000
Image.MAX_IMAGE_PIXELS = None


def max_pixels() -> int:
    value = os.environ.get("LIGHTDEBLUR_MAX_PIXELS", "")
    try:
        return int(value) if value else DEFAULT_MAX_PIXELS
    except ValueError:
        raise DataError(f"LIGHTDEBLUR_MAX_PIXELS must be a whole number of pixels, got {value!r}") from None
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def image_files(folder: Path) -> list[Path]:
    """Image files below ``folder`` (recursively), sorted so every run sees the same order; may be empty."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def list_images(folder: str | Path, what: str = "data folder") -> list[Path]:
    """``image_files`` of a folder that must exist and hold at least one image (``what`` names it in errors)."""
    folder = Path(folder).expanduser()  # config values are not shell-expanded
    if not folder.is_dir():
        raise DataError(f"{what} {folder} does not exist or is not a folder")
    files = image_files(folder)
    if not files:
        raise DataError(f"{what} {folder} contains no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def check_pixel_limit(width: int, height: int, path: str | Path) -> None:
    """A DataError when a file's header declares more pixels than ``max_pixels()``: every decoder (Pillow's and
    OpenCV's) is called only after this check, so a few-byte "decompression bomb" never allocates its pixels."""
    limit = max_pixels()
    if width * height > limit:
        raise DataError(f"image {path} declares {width}x{height} = {width * height:,} pixels, more than the limit "
                        f"of {limit:,} (set LIGHTDEBLUR_MAX_PIXELS to raise it)")


def open_image(path: str | Path) -> Image.Image:
    """The decoded image, upright (EXIF orientation applied); a DataError naming the file if it cannot be read."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            check_pixel_limit(image.width, image.height, path)
            frames = getattr(image, "n_frames", 1)  # animations and multi-page TIFFs: the first frame is read
            tiff_bits = image.tag_v2.get(258) if image.format == "TIFF" else None  # BitsPerSample
            image = ImageOps.exif_transpose(image)
            image.load()
            image.info["frames"] = frames
            image.info["bits_per_sample"] = max(tiff_bits) if tiff_bits else 8
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"cannot read image {path}: {error}") from None
    if image.width == 0 or image.height == 0:
        raise DataError(f"image {path} is empty (0 pixels)")
    return image


def read_image(path: str | Path) -> torch.Tensor:
    """A 3 x H x W float32 tensor in [0, 1].

    EXIF orientation is applied; 16-bit images keep their precision; grayscale is replicated to RGB; palette and
    CMYK are converted to RGB; alpha is dropped (training pairs have no alpha; inference keeps it separately).
    """
    return pil_to_tensor(open_image(path), path)


def read_array(path: str | Path) -> np.ndarray:
    """The same image as ``read_image``, as an H x W x 3 float32 array (the layout albumentations expects)."""
    return pil_to_array(open_image(path), path)


def image_size(path: str | Path, verify: bool = False) -> tuple[int, int]:
    """(width, height) as ``read_image`` will return it (EXIF rotations swap them), from the header alone.

    ``verify`` also checks the file's integrity where the format allows it without decoding (PNG chunk CRCs,
    which catch truncated files). A DataError names the file if it is not a readable image.
    """
    try:
        if verify:  # PIL's verify must come straight after open, and leaves the image unusable
            with Image.open(path) as image:
                image.verify()
        with Image.open(path) as image:
            width, height = image.size
            check_pixel_limit(width, height, path)
            rotated = _orientation(image, path) in (5, 6, 7, 8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"cannot read image {path}: {error}") from None
    if width == 0 or height == 0:
        raise DataError(f"image {path} is empty (0 pixels)")
    return (height, width) if rotated else (width, height)


def exif_orientation(path: str | Path) -> int:
    """The file's EXIF orientation (1-8; 1 when it has none), read without decoding its pixels."""
    try:
        with Image.open(path) as image:
            check_pixel_limit(image.width, image.height, path)
            return _orientation(image, path)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"cannot read image {path}: {error}") from None


def _orientation(image: Image.Image, path: str | Path) -> int:
    # Pillow's PNG getexif() decodes the whole image to look for an eXIf chunk after the pixel data; the chunk
    # list is read here instead, skipping the pixel data unread.
    if image.format == "PNG" and "exif" not in image.info:
        exif = Image.Exif()
        found = _png_exif_chunk(Path(path))
        if found:
            exif.load(found)
        return exif.get(ORIENTATION_TAG, 1)
    return image.getexif().get(ORIENTATION_TAG, 1)


def _png_exif_chunk(path: Path) -> bytes | None:
    """The payload of a PNG's eXIf chunk, found by walking the chunk headers (the pixel data is seeked over)."""
    with open(path, "rb") as file:
        file.seek(8)  # the signature
        while True:
            header = file.read(8)
            if len(header) < 8:
                return None
            length, kind = int.from_bytes(header[:4], "big"), header[4:]
            if kind == b"eXIf":
                return file.read(length)
            if kind == b"IEND":
                return None
            file.seek(length + 4, os.SEEK_CUR)  # the data and its CRC


def orient_array(array: np.ndarray, orientation: int) -> np.ndarray:
    """An H x W (x C) array turned upright as ``ImageOps.exif_transpose`` turns an image with that orientation."""
    turns = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
             5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
             8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(turns[orientation](array)) if orientation in turns else array


class CachedImages:
    """``read`` (``read_array`` or ``read_image``) with a small per-process LRU cache of decoded images.

    Picklable: DataLoader workers each rebuild their own cache (lru_cache wrappers do not pickle)."""

    def __init__(self, read=read_array, maxsize: int = 32):
        self.read, self.maxsize = read, maxsize
        self._cached = lru_cache(maxsize=maxsize)(read)

    def __call__(self, path: str | Path):
        return self._cached(path)

    def __getstate__(self) -> dict:
        return {"read": self.read, "maxsize": self.maxsize}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)


def quantize_8bit(images: torch.Tensor) -> torch.Tensor:
    """What saving as an 8-bit PNG does to a [0, 1] image: clamp, round to 1/255 steps (ties to even, as NumPy)."""
    return torch.round(images.clamp(0.0, 1.0) * 255.0) / 255.0


def array_to_tensor(array: np.ndarray) -> torch.Tensor:
    """H x W x C array -> contiguous C x H x W tensor (shares memory where the layout allows)."""
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def tensor_to_array(tensor: torch.Tensor) -> np.ndarray:
    """C x H x W tensor -> H x W x C array (a view)."""
    return tensor.numpy().transpose(1, 2, 0)


def pil_to_tensor(image: Image.Image, path: str | Path = "<image>") -> torch.Tensor:
    return array_to_tensor(pil_to_array(image, path))


def pil_to_array(image: Image.Image, path: str | Path = "<image>") -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale: PIL widens to int32 ("I"); keep the full range instead of truncating to 8 bits.
        array = np.asarray(image, dtype=np.float32) / 65535.0
        array = np.repeat(array[..., None], 3, axis=2)
    elif image.mode == "F":
        array = np.repeat(np.asarray(image, dtype=np.float32)[..., None], 3, axis=2)
    else:
        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    if not np.isfinite(array).all():
        raise DataError(f"image {path} contains non-finite values after decoding")
    return np.clip(array, 0.0, 1.0, out=array if array.flags.writeable else None)


LABEL_HEIGHT = 16  # px of the white strip above labelled panels (Pillow's default bitmap font is 11 px high)


def side_by_side(images: list[torch.Tensor], gap: int = 8, labels: list[str] | None = None) -> torch.Tensor:
    """Panels left to right on a white background, each 3 x H x W; heights may differ. ``labels`` puts each
    panel's name in a strip above it."""
    top = LABEL_HEIGHT if labels else 0
    height = max(image.shape[-2] for image in images) + top
    width = sum(image.shape[-1] for image in images) + gap * (len(images) - 1)
    canvas = torch.ones(3, height, width)
    left = 0
    for image in images:
        canvas[:, top : top + image.shape[-2], left : left + image.shape[-1]] = image
        left += image.shape[-1] + gap
    if labels:
        from PIL import ImageDraw

        strip = Image.new("L", (width, top), 255)
        draw, left = ImageDraw.Draw(strip), 0
        for image, label in zip(images, labels):
            draw.text((left + 2, 2), label, fill=0)
            left += image.shape[-1] + gap
        canvas[:, :top] = torch.from_numpy(np.asarray(strip, dtype=np.float32) / 255.0)
    return canvas
