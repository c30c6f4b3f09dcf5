"""Dead-leaves images: a procedural source of sharp training images that never runs out.

After Achddou, Gousseau, Ladjal and Susstrunk ("Synthetic images as a regularity prior for image restoration neural
networks", 2021; "VibrantLeaves", 2025): opaque shapes (disks and polygons) fall on the image one over another
with power-law sizes, so the result has edges at every scale and orientation and a scale-invariant spectrum as
natural photos do. Colours are drawn from the pixels of natural photos (a palette given to the generator), each
shape's interior carries a texture (a linear gradient or a sinusoidal grating of random period and direction),
and with some probability the shapes behind a random depth are defocused, as a lens with a finite depth of field
renders them.

Shapes are rasterised back to front by OpenCV into a map of which shape is on top at each pixel; colours and
textures are then computed for all pixels at once. Every image is a pure function of the random generator it is
given.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from scipy import ndimage

# Radii are drawn from p(r) ~ r^-3 on [r_min, r_max] (the exponent of the scale-invariant dead-leaves model).
POWER = 3.0
SUBPIXEL_BITS = 4  # OpenCV draws at 1/16 px positions, so small shapes keep their true size and place


@dataclass
class DeadLeaves:
    """``DeadLeaves(palette)(size, rng)`` -> a 3 x size x size float32 tensor in [0, 1].

    ``palette``: N x 3 RGB colours in [0, 1] (pixels of natural photos); ``shapes``: how many fall on an image;
    ``min_radius`` and ``max_radius``: in pixels and as a fraction of the side; ``polygon_share``: the share of
    polygons; ``texture``: the largest amplitude of a shape's texture; ``defocus_probability``: how often the shapes
    behind a random depth are blurred (Gaussian, sigma up to ``max_defocus`` px).
    """

    palette: np.ndarray
    shapes: int = 3000
    min_radius: float = 1.0
    max_radius: float = 0.4
    polygon_share: float = 0.5
    texture: float = 0.25
    defocus_probability: float = 0.3
    max_defocus: float = 3.0

    def __post_init__(self) -> None:
        self.palette = np.asarray(self.palette, dtype=np.float32).reshape(-1, 3)
        if not len(self.palette):
            raise ValueError("the dead-leaves palette is empty")
        if self.shapes < 1 or not 0 < self.min_radius or not 0 < self.max_radius <= 1:
            raise ValueError("dead leaves need shapes >= 1, min_radius > 0 px and 0 < max_radius <= 1")

    def __call__(self, size: int, rng: np.random.Generator) -> torch.Tensor:
        shapes = self._draw_shapes(size, rng)
        background = self.palette[rng.integers(len(self.palette))]
        depth = int(rng.integers(self.shapes)) if rng.random() < self.defocus_probability else 0
        sigma = rng.uniform(0.5, self.max_defocus)
        # Shape i covers the shapes before it. Those before ``depth`` lie behind the focal plane: rendered as a
        # layer of their own and blurred, then seen wherever the nearer shapes leave the image uncovered.
        near = self._render(shapes, range(depth, self.shapes), size, background)
        if depth == 0:
            image = near[0]
        else:
            far, _ = self._render(shapes, range(depth), size, background)
            far = ndimage.gaussian_filter(far, sigma=(sigma, sigma, 0), mode="reflect")
            image = np.where(near[1][..., None], near[0], far)
        return torch.from_numpy(np.ascontiguousarray(np.clip(image, 0, 1).transpose(2, 0, 1)))

    def _draw_shapes(self, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        count = self.shapes
        low, high = min(self.min_radius, self.max_radius * size), self.max_radius * size
        a, b = low ** (1 - POWER), high ** (1 - POWER)  # inverse-CDF sampling of r^-POWER on [low, high]
        radius = (a + rng.random(count) * (b - a)) ** (1 / (1 - POWER))
        return {
            "radius": radius,
            "centre": rng.uniform(0, size, (count, 2)),
            "polygon": rng.random(count) < self.polygon_share,
            "sides": rng.integers(3, 9, count),
            "turn": rng.uniform(0, 2 * np.pi, count),
            "colour": self.palette[rng.integers(len(self.palette), size=count)],
            "texture": rng.integers(3, size=count),  # flat, gradient, grating
            "amplitude": (rng.uniform(0, self.texture, count)[:, None] * (0.5 + 0.5 * rng.random((count, 3)))),
            "direction": rng.uniform(0, 2 * np.pi, count),
            "period": np.maximum(rng.uniform(0.15, 1.0, count) * radius, 2.0),  # px, at least 2 (Nyquist)
        }

    def _render(self, shapes: dict[str, np.ndarray], order: range, size: int,
                background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The image of shapes ``order`` (later ones on top) over ``background``, and where any shape covers it."""
        top = np.full((size, size), -1, np.int32)  # the index of the shape seen at each pixel
        scale = 1 << SUBPIXEL_BITS
        for index in order:
            centre, radius = shapes["centre"][index], shapes["radius"][index]
            if shapes["polygon"][index]:
                sides = int(shapes["sides"][index])
                angles = shapes["turn"][index] + 2 * np.pi * np.arange(sides) / sides
                corners = centre + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
                cv2.fillPoly(top, [np.round(corners * scale).astype(np.int32)], int(index), shift=SUBPIXEL_BITS)
            else:
                cv2.circle(top, tuple(int(v) for v in np.round(centre * scale)), int(round(radius * scale)),
                           int(index), thickness=-1, shift=SUBPIXEL_BITS)
        covered = top >= 0
        shown = np.where(covered, top, 0)
        y, x = np.mgrid[0:size, 0:size].astype(np.float32)
        along = ((x - shapes["centre"][shown, 0]) * np.cos(shapes["direction"][shown])
                 + (y - shapes["centre"][shown, 1]) * np.sin(shapes["direction"][shown]))
        kind = shapes["texture"][shown]
        wave = np.where(kind == 1, along / np.maximum(shapes["radius"][shown], 1.0),
                        np.where(kind == 2, np.sin(2 * np.pi * along / shapes["period"][shown]), 0.0))
        image = shapes["colour"][shown] + wave[..., None] * shapes["amplitude"][shown]
        image = np.where(covered[..., None], image, background).astype(np.float32)
        return image, covered


def photo_palette(photos: list[torch.Tensor], colours: int = 4096, seed: int = 0) -> np.ndarray:
    """``colours`` RGB pixels drawn uniformly from ``photos`` (3 x H x W tensors): the colour statistics of
    natural photos, for the leaves to be painted with."""
    rng = np.random.default_rng(seed)
    per_photo = max(1, colours // max(len(photos), 1))
    picks = [photo.reshape(3, -1).T.numpy()[rng.integers(photo[0].numel(), size=per_photo)] for photo in photos]
    return np.concatenate(picks)[:colours].astype(np.float32)

