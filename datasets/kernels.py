"""Blur kernels (PSFs): camera-shake trajectories, linear motion, Gaussian and defocus.

Every kernel is a ``size x size`` float32 tensor, non-negative, summing to 1, and centred on its centre of mass
so blurring does not shift the image (the sharp target stays aligned with its blurred input). Random kernels are
pure functions of the ``numpy.random.Generator`` they are given: the same seed gives the same kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.registry import Registry

# "none" is the delta kernel: a pair whose input is only noisy (and compressed), so a blind model also sees
# photos that are already sharp and learns to leave them alone instead of sharpening every edge it meets.
KERNEL_KINDS = ("trajectory", "trajectory_v1", "linear", "gaussian", "defocus", "smooth", "none")
# The kinds whose size is a path extent in pixels (drawn from ``KernelMix.extent``); the others have a radius.
MOTION_KINDS = ("trajectory", "trajectory_v1", "linear", "smooth")
EXTENT_LAWS = ("uniform", "log")

# Boracchi and Foi (2012) sample each trajectory's PSF at these fractions of the exposure time.
EXPOSURE_FRACTIONS = (0.01, 0.1, 0.5, 1.0)
# motion-v1 was built without the 1/100 exposure; "trajectory_v1" keeps its fractions so it rebuilds bit for bit.
EXPOSURE_FRACTIONS_V1 = (0.1, 0.5, 1.0)
# Boracchi-Foi's createTrajectory defaults: a 60 px path of 2000 samples on a 64 px canvas. The centripetal pull is
# proportional to the position in pixels, so the walk must be generated at this scale and only then rescaled.
BF_PATH_LENGTH = 60.0
BF_STEPS = 2000


def _check_size(size: int) -> None:
    if size < 3 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and >= 3, got {size}")


def delta_kernel(size: int) -> torch.Tensor:
    kernel = torch.zeros(size, size)
    kernel[size // 2, size // 2] = 1.0
    return kernel


def splat(points: np.ndarray, size: int, weights: np.ndarray | None = None) -> torch.Tensor:
    """Bilinear splat of (x, y) points into a normalised ``size x size`` kernel; sub-pixel positions keep their
    weight. Points are first moved so their weighted centroid is the kernel centre (no image shift)."""
    weights = np.ones(len(points)) if weights is None else np.asarray(weights, dtype=np.float64)
    points = points - (points * weights[:, None]).sum(0) / weights.sum() + (size - 1) / 2
    points = np.clip(points, 0, size - 1 - 1e-9)
    kernel = np.zeros((size, size), dtype=np.float64)
    x0 = np.floor(points[:, 0]).astype(int)
    y0 = np.floor(points[:, 1]).astype(int)
    fx = points[:, 0] - x0
    fy = points[:, 1] - y0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            np.add.at(kernel, (np.minimum(y0 + dy, size - 1), np.minimum(x0 + dx, size - 1)), weights * wy * wx)
    return torch.from_numpy(kernel / kernel.sum()).float()


def kernel_extent(kernel: torch.Tensor) -> int:
    """The extent of a kernel in pixels: the longer side of the bounding box of its support, less the one pixel
    a bilinear splat adds (a delta has extent 0). A kernel field (... x k x k) has its largest node's extent."""
    if kernel.dim() > 2:
        return max(kernel_extent(node) for node in kernel.reshape(-1, *kernel.shape[-2:]))
    rows, cols = torch.nonzero(kernel > 0, as_tuple=True)
    return int(max(rows.max() - rows.min(), cols.max() - cols.min()))


def _fit_inside(path: np.ndarray, size: int) -> np.ndarray:
    """Centre a path on its centroid and shrink it if it would reach the kernel's outer ring."""
    path = path - path.mean(axis=0)
    reach = np.abs(path).max()
    limit = (size - 3) / 2
    return path * (limit / reach) if reach > limit else path


# -- camera-shake trajectories (Boracchi and Foi 2012; the model DeblurGAN used) ------------------------------


def shake_trajectory(
    rng: np.random.Generator, length: float, steps: int = 1000, anxiety: float | None = None
) -> np.ndarray:
    """A camera-shake trajectory: ``steps`` (x, y) positions of total path length ``length`` pixels.

    An inertial random walk: the velocity keeps its magnitude and is nudged each step by Gaussian jitter and a
    centripetal pull back towards the start; with small probability an impulsive shake reverses it. The
    parameters are drawn as in Boracchi and Foi's createTrajectory.m (anxiety ~ 0.1 U(0,1), centripetal ~ 0.7
    U(0,1), Gaussian term ~ 10 U(0,1), big-shake frequency ~ 0.2 U(0,1)).
    """
    anxiety = 0.1 * rng.random() if anxiety is None else anxiety
    centripetal = 0.7 * rng.random()
    gaussian_term = 10 * rng.random()
    big_shake_frequency = 0.2 * rng.random()
    step_length = length / (steps - 1)
    direction = np.exp(1j * 2 * np.pi * rng.random())
    velocity = direction * (anxiety if anxiety > 0 else step_length)
    # All random numbers are drawn up front (fast, and independent of the branch taken).
    shakes = rng.random(steps) < big_shake_frequency * anxiety
    shake_angles = np.pi + (rng.random(steps) - 0.5)
    jitter = rng.standard_normal(steps) + 1j * rng.standard_normal(steps)
    positions = np.zeros(steps, dtype=np.complex128)
    position = 0j
    for t in range(steps - 1):
        kick = 2 * velocity * np.exp(1j * shake_angles[t]) if shakes[t] else 0
        velocity += kick + anxiety * (gaussian_term * jitter[t] - centripetal * position) * step_length
        magnitude = abs(velocity)
        velocity = velocity / magnitude * step_length if magnitude > 0 else direction * step_length
        position += velocity
        positions[t + 1] = position
    return np.stack([positions.real, positions.imag], axis=1)


def trajectory_kernels(path: np.ndarray, size: int, fractions=EXPOSURE_FRACTIONS) -> list[torch.Tensor]:
    """The PSFs of one trajectory for exposures ending at each fraction of its duration (Boracchi-Foi's
    createPSFs): the camera only moves along the first part of the path during a shorter exposure."""
    path = _fit_inside(path, size)
    kernels = []
    for fraction in fractions:
        count = max(1, int(round(fraction * len(path))))
        kernels.append(splat(path[:count], size))
    return kernels


def path_extent(path: np.ndarray) -> float:
    """The blur extent of a path in pixels: the longer side of its bounding box."""
    return float((path.max(axis=0) - path.min(axis=0)).max())


def random_trajectory_kernel(
    size: int, rng: np.random.Generator, extent: tuple[float, float] | None = None, fractions=EXPOSURE_FRACTIONS
) -> torch.Tensor:
    """A random camera-shake PSF (Boracchi and Foi 2012, their createTrajectory and createPSFs).

    The walk is generated at their scale (``BF_PATH_LENGTH`` px, ``BF_STEPS`` samples), one exposure fraction is
    drawn and the camera's path during that exposure is rescaled so its extent (the longer bounding-box side) is
    uniform in ``extent`` pixels (default [1, size - 3]): their fixed path length gives tangled walks of very
    different sizes, while a drawn extent covers every blur size evenly. Shorter exposures keep the simpler
    beginning of the same shake.
    """
    _check_size(size)
    low, high = extent if extent is not None else (1.0, size - 3.0)
    path = shake_trajectory(rng, length=BF_PATH_LENGTH, steps=BF_STEPS)
    fraction = fractions[int(rng.integers(len(fractions)))]
    path = path[: max(2, int(round(fraction * len(path))))]
    path = path - path.mean(axis=0)
    target = rng.uniform(min(low, high), high)
    path *= target / (path_extent(path) or 1.0)
    return splat(_fit_inside(path, size), size)


def random_trajectory_kernel_v1(
    size: int, rng: np.random.Generator, min_reach: float = 1.0, fractions=EXPOSURE_FRACTIONS_V1,
    max_reach: float | None = None,
) -> torch.Tensor:
    """The shake PSF motion-v1 was built with, kept so that benchmark rebuilds bit for bit: the walk is made at
    length 1 (which leaves Boracchi-Foi's centripetal pull about 60x too weak: nearly straight, untangled paths),
    then scaled to reach U(min_reach, max_reach) px from its centroid (max_reach defaults to (size - 3) / 2).
    Use "trajectory" for new work."""
    _check_size(size)
    path = shake_trajectory(rng, length=1.0)
    path = path - path.mean(axis=0)
    limit = (size - 3) / 2 if max_reach is None else min(max_reach, (size - 3) / 2)
    reach = np.abs(path).max() or 1.0
    path *= rng.uniform(min(min_reach, limit), limit) / reach
    return trajectory_kernels(path, size, (fractions[int(rng.integers(len(fractions)))],))[0]


# -- parametric kernels -----------------------------------------------------------------------------------


def linear_kernel(size: int, length: float, angle: float) -> torch.Tensor:
    """Straight uniform motion of ``length`` pixels at ``angle`` radians (a box blur along a line)."""
    _check_size(size)
    length = min(length, size - 3)
    t = np.linspace(-0.5, 0.5, max(2, int(np.ceil(length * 4))))[:, None]
    return splat(t * length * np.array([[np.cos(angle), np.sin(angle)]]), size)


def gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    """An isotropic Gaussian, truncated at the kernel border and renormalised; sigma 0 is a delta."""
    _check_size(size)
    if sigma <= 0:
        return delta_kernel(size)
    r = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-0.5 * (r / sigma) ** 2)
    kernel = g[:, None] * g[None, :]
    return (kernel / kernel.sum()).float()


def disk_kernel(size: int, radius: float, supersample: int = 8) -> torch.Tensor:
    """Defocus: a pillbox of ``radius`` pixels with anti-aliased edges (area coverage by supersampling)."""
    _check_size(size)
    radius = min(radius, size // 2 - 0.5)
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    r = np.arange(size) - size // 2
    fine = (r[:, None] + offsets[None, :]).reshape(-1)
    inside = (fine[:, None] ** 2 + fine[None, :] ** 2) <= max(radius, 0.5) ** 2
    coverage = inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    return torch.from_numpy(coverage / coverage.sum()).float()


def random_motion_kernel(
    size: int, rng: np.random.Generator, min_length: float = 3.0, max_length: float | None = None, points: int = 64
) -> torch.Tensor:
    """"smooth": a smooth random camera path (Gaussian turns of the heading, from straight lines to curves),
    of length uniform in [min_length, max_length]. Gentler than the Boracchi-Foi trajectories."""
    _check_size(size)
    max_length = size - 3 if max_length is None else max_length
    length = rng.uniform(min(min_length, max_length), max_length)
    headings = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0.0, rng.uniform(0.0, 0.4), points))
    steps = np.stack([np.cos(headings), np.sin(headings)], axis=1)
    path = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    travelled = np.abs(np.diff(path, axis=0)).sum() or 1.0
    return splat(_fit_inside(path * length / travelled, size), size)


def gaussian_sigmas(rng: np.random.Generator, count: int, limit: float) -> np.ndarray:
    """``count`` sigmas drawn |N(0, 5)| (the Gaussian-deconvolution seed), those above ``limit`` redrawn rather
    than clipped, so no probability piles up at the cap."""
    sigmas = np.abs(rng.normal(0.0, 5.0, count))
    while (sigmas > limit).any():
        redraw = sigmas > limit
        sigmas[redraw] = np.abs(rng.normal(0.0, 5.0, int(redraw.sum())))
    return sigmas


# -- mixtures ------------------------------------------------------------------------------------------------


@dataclass
class KernelMix:
    """Draws a kernel of a random kind, with probabilities proportional to ``weights`` (kind -> weight).

    ``extent`` (min, max) in pixels sets the motion kinds' size: trajectory extents and linear and smooth path
    lengths are uniform in it; without it they fill the kernel (up to size - 3, the behaviour motion-v1 and
    gaussian-v1 were built with). Gaussian sigma is |N(0, 5)| as in the Gaussian-deconvolution seed, truncated
    (redrawn) to at most a quarter of the kernel size (of the largest extent when given) so the cut-off tail stays
    negligible; defocus radii are uniform in [1, size / 2 - 1] (or [1, max extent / 2]).

    ``extent_law`` "log" draws the motion kinds' extent log-uniformly in ``extent`` instead (as many blurs of 2-4 px
    as of 16-32 px: small shake is the common case in photos, and a blind model must not over-correct it), and then
    sizes "trajectory_v1" walks by it too (reach half the drawn extent) rather than by the kernel size.
    """

    size: int
    weights: dict[str, float]
    extent: tuple[float, float] | None = None
    extent_law: str = "uniform"

    def __post_init__(self) -> None:
        _check_size(self.size)
        if self.extent is not None:
            low, high = (float(v) for v in self.extent)
            if not 1 <= low <= high <= self.size - 3:
                raise ValueError(f"blur extent must satisfy 1 <= min <= max <= kernel size - 3 = {self.size - 3} "
                                 f"px, got [{low:g}, {high:g}]")
            self.extent = (low, high)
        if self.extent_law not in EXTENT_LAWS:
            raise ValueError(f"extent law must be one of {', '.join(EXTENT_LAWS)}, got {self.extent_law!r}")
        if self.extent_law != "uniform" and self.extent is None:
            raise ValueError(f"extent law {self.extent_law!r} needs an extent range")
        unknown = sorted(set(self.weights) - set(KERNEL_KINDS))
        if unknown:
            raise ValueError(f"unknown kernel kind {unknown[0]!r}; known: {', '.join(KERNEL_KINDS)}")
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError(f"kernel weights must be >= 0 with a positive sum, got {self.weights}")
        self.kinds = list(self.weights)
        total = sum(self.weights.values())
        self.probabilities = np.array([self.weights[k] / total for k in self.kinds])

    def __call__(self, rng: np.random.Generator) -> tuple[torch.Tensor, str]:
        kind = self.kinds[int(rng.choice(len(self.kinds), p=self.probabilities))]
        if kind == "none":
            return delta_kernel(self.size), kind
        size, extent = self.size, self.extent
        if self.extent_law == "log" and kind in MOTION_KINDS:
            drawn = float(np.exp(rng.uniform(np.log(extent[0]), np.log(extent[1]))))
            if kind == "trajectory_v1":
                return random_trajectory_kernel_v1(size, rng, drawn / 2, max_reach=drawn / 2), kind
            extent = (drawn, drawn)
        return KERNEL_DRAWS[kind](size, rng, extent), kind


def _linear(size: int, rng: np.random.Generator, extent) -> torch.Tensor:
    low, high = extent or (min(3, size - 3), size - 3)
    return linear_kernel(size, rng.uniform(low, high), rng.uniform(0, np.pi))


def _gaussian(size: int, rng: np.random.Generator, extent) -> torch.Tensor:
    limit = size / 4 if extent is None else extent[1] / 4
    return gaussian_kernel(size, float(gaussian_sigmas(rng, 1, limit)[0]))


def _defocus(size: int, rng: np.random.Generator, extent) -> torch.Tensor:
    high = size / 2 - 1 if extent is None else extent[1] / 2
    return disk_kernel(size, rng.uniform(1, max(1.0, high)))


def _smooth(size: int, rng: np.random.Generator, extent) -> torch.Tensor:
    if extent is None:
        return random_motion_kernel(size, rng)
    return random_motion_kernel(size, rng, min_length=extent[0], max_length=extent[1])


# Kernel kinds by name: (size, rng, extent or None) -> a k x k kernel. Each draws from rng in a fixed order, so a
# seed gives the same kernel release after release (the benchmarks' fingerprints depend on it).
KERNEL_DRAWS: Registry = Registry("kernel kind", {
    "trajectory": lambda size, rng, extent: random_trajectory_kernel(size, rng, extent),
    "trajectory_v1": lambda size, rng, extent: random_trajectory_kernel_v1(size, rng),
    "linear": _linear,
    "gaussian": _gaussian,
    "defocus": _defocus,
    "smooth": _smooth,
    "none": lambda size, rng, extent: delta_kernel(size),
})
