"""The ``data:`` section of an experiment config."""

from __future__ import annotations

from dataclasses import dataclass, field

from .kernels import EXTENT_LAWS, KERNEL_KINDS
from .presets import PRESETS
from .synthetic import DEGRADATION_NOISE_SPACES

SOURCES = ("embedded", "folder", "gopro", "realblur", "hide", "paired")
SYNTHETIC_SOURCES = ("embedded", "folder")
MAX_FIELD_GRID = 16  # a field holds field_grid^2 kernels per pair
MAX_VAL_CROPS_PER_PHOTO = 1000


@dataclass
class DataConfig:
    # embedded: scikit-image's bundled photos, blurred on the fly; folder: every image below sharp_dir, blurred on
    # the fly; gopro: GOPRO_Large at root; realblur: RealBlur at root (its list files); hide: HIDE_dataset at
    # root; paired: root/blur and root/sharp with matching names, or pairs_file. See docs/data.md for each layout.
    source: str = "embedded"
    root: str | None = None  # gopro, realblur, hide, paired
    sharp_dir: str | None = None  # folder
    val_sharp_dir: str | None = None  # folder: default holds out val_fraction of sharp_dir's images
    pairs_file: str | None = None  # paired: CSV or text list of "blur,sharp" paths (relative to the list file)
    allow_outside_paths: bool = False  # pairs_file / RealBlur lists may name files outside their folder
    gopro_blur: str = "blur"  # blur (what published GoPro tables use) | blur_gamma
    realblur_variant: str = "J"  # J (JPEG, camera-processed) | R (raw)
    # Validation: whole sequences/scenes/photos are held out, never frames of one sequence on both sides.
    val_fraction: float = 0.15
    crop_size: int = 96
    train_pairs_per_epoch: int = 400  # 0: one pair per training image (pair) per epoch
    val_crop_size: int = 160  # 0: whole images (paired sources)
    val_crops_per_photo: int = 4
    val_seed: int = 12345
    # Synthetic sources: validate on the held-out photos under a published benchmark's degradation (a preset of
    # datasets.benchmark.PRESETS, e.g. motion-v1) instead of the training mix, so the validation curve
    # and best.pt follow what that benchmark measures. null: the training mix.
    val_degradation: str | None = None
    # Synthetic blur (embedded and folder sources): kernel kinds and their relative frequencies.
    kernel_size: int = 21  # odd; blurs reach at most (kernel_size - 3) / 2 pixels from their centre
    kernels: dict[str, float] = field(
        default_factory=lambda: {"trajectory": 0.7, "linear": 0.1, "gaussian": 0.1, "defocus": 0.1}
    )
    # Motion blur extent [min, max] in pixels (trajectory extent, linear/smooth path length), uniform per pair;
    # null fills the kernel (up to kernel_size - 3). Needs max <= kernel_size - 3.
    blur_extent: list[float] | None = None
    blur_extent_law: str = "uniform"  # uniform | log: how motion extents are drawn in blur_extent
    noise_sigma: float = 0.0  # Gaussian read noise, std U(0, noise_sigma) per pair, in noise_space units
    noise_space: str = "linear"  # linear: on the sensor, before the clip | srgb: after the tone curve (motion-v1)
    # | mixed: one of the two per pair
    # JPEG re-compression of the blurred input: quality uniform in [min, max] with jpeg_probability; null: off.
    jpeg_quality: list[int] | None = None
    jpeg_probability: float = 0.5
    quantize: bool = False  # round blurred inputs to 8-bit levels, as every image file a model is given is
    # Spatially varying camera shake (a walk plus a roll, rendered on a field_grid x field_grid lattice of kernels):
    # the share of pairs blurred that way instead of by one kernel from data.kernels; 0: none.
    field_probability: float = 0.0
    field_grid: int = 3
    max_roll_degrees: float = 1.0
    # Synthetic sources: the share of training pairs cut from dead-leaves images (datasets/dead_leaves.py, painted
    # with the training photos' colours) instead of photos; validation stays on photos. 0: photos only.
    leaves: float = 0.0
    # A fixed family of kernel_bank kernels drawn once from data.kernels (seeded by kernel_bank_seed), one per pair,
    # for the training pairs and (without val_degradation) validation alike; 0: a new kernel for every pair.
    kernel_bank: int = 0
    kernel_bank_seed: int = 0
    poisson_peak: float = 0.0  # shot noise: photons at white, log-uniform in [peak, 100 peak] per pair; 0 off
    saturation: float = 0.0  # linear-light gain U(1, 1 + saturation) per pair: clipped highlights and streaks
    # Training pairs: the loader workers cut and augment the sharp window and draw the kernel and noise levels;
    # true: the trainer blurs the batch on its device (a GPU does in microseconds what costs a worker most of
    # its time). Same distribution; the noise is drawn from the device's generator instead of the item's.
    blur_on_device: bool = False
    # Paired augmentation (training only; validation is never augmented).
    flips: bool = True
    rot90: bool = True
    color_jitter: float = 0.0  # e.g. 0.05: brightness/contrast/saturation +-5%, same on blur and sharp
    # Bad files (unreadable, mismatched sizes, missing partner): fail, or skip them with a counted warning.
    on_bad: str = "fail"
    num_workers: int = 0

    @property
    def synthetic(self) -> bool:
        return self.source in SYNTHETIC_SOURCES

    def check(self) -> list[str]:
        problems = []
        if self.source not in SOURCES:
            problems.append(f"data.source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if self.source == "folder" and not self.sharp_dir:
            problems.append("data.source 'folder' needs data.sharp_dir")
        if self.source in ("gopro", "realblur", "hide") and not self.root:
            problems.append(f"data.source {self.source!r} needs data.root")
        if self.source == "paired" and not (self.root or self.pairs_file):
            problems.append("data.source 'paired' needs data.root (with blur/ and sharp/) or data.pairs_file")
        if self.gopro_blur not in ("blur", "blur_gamma"):
            problems.append(f"data.gopro_blur must be blur or blur_gamma, got {self.gopro_blur!r}")
        if self.realblur_variant not in ("J", "R"):
            problems.append(f"data.realblur_variant must be J or R, got {self.realblur_variant!r}")
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            problems.append(f"data.kernel_size must be odd and >= 3, got {self.kernel_size}")
        unknown = sorted(set(self.kernels) - set(KERNEL_KINDS))
        if unknown:
            problems.append(f"data.kernels: unknown kind {unknown[0]!r}; known: {', '.join(KERNEL_KINDS)}")
        weights = list(self.kernels.values())
        if not all(isinstance(w, (int, float)) and w >= 0 for w in weights) or not sum(weights) > 0:
            problems.append(f"data.kernels weights must be numbers >= 0 with a positive sum, got {self.kernels}")
        for key in ("crop_size", "val_crops_per_photo"):
            if getattr(self, key) < 1:
                problems.append(f"data.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("train_pairs_per_epoch", "val_crop_size", "num_workers", "kernel_bank", "kernel_bank_seed"):
            if getattr(self, key) < 0:
                problems.append(f"data.{key} must be >= 0, got {getattr(self, key)}")
        if self.blur_on_device and not self.synthetic:
            problems.append(f"data.blur_on_device needs a synthetic source (embedded, folder), not {self.source!r}")
        if self.synthetic and self.val_crop_size < 1:
            problems.append("data.val_crop_size must be >= 1 for synthetic sources (whole images need pairs)")
        if not 0 < self.val_fraction < 1:
            problems.append(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.blur_extent is not None:
            limit = self.kernel_size - 3
            if len(self.blur_extent) != 2 or not 1 <= self.blur_extent[0] <= self.blur_extent[1] <= limit:
                problems.append(f"data.blur_extent must be [min, max] with 1 <= min <= max <= data.kernel_size - 3 "
                                f"= {limit} px, got {self.blur_extent}")
        if self.noise_space not in DEGRADATION_NOISE_SPACES:
            problems.append(f"data.noise_space must be one of {', '.join(DEGRADATION_NOISE_SPACES)}, got "
                            f"{self.noise_space!r}")
        if self.blur_extent_law not in EXTENT_LAWS:
            problems.append(f"data.blur_extent_law must be one of {', '.join(EXTENT_LAWS)}, got "
                            f"{self.blur_extent_law!r}")
        elif self.blur_extent_law != "uniform" and self.blur_extent is None:
            problems.append(f"data.blur_extent_law={self.blur_extent_law} needs data.blur_extent [min, max]")
        if self.jpeg_quality is not None:
            if len(self.jpeg_quality) != 2 or not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
                problems.append(f"data.jpeg_quality must be [min, max] with 1 <= min <= max <= 100, got "
                                f"{self.jpeg_quality}")
        if not 0 <= self.jpeg_probability <= 1:
            problems.append(f"data.jpeg_probability must be in [0, 1], got {self.jpeg_probability}")
        for key in ("noise_sigma", "poisson_peak", "saturation", "color_jitter"):
            if getattr(self, key) < 0:
                problems.append(f"data.{key} must be >= 0, got {getattr(self, key)}")
        if self.val_degradation is not None:
            if self.val_degradation not in PRESETS:
                problems.append(f"data.val_degradation must be null or one of {', '.join(sorted(PRESETS))}, got "
                                f"{self.val_degradation!r}")
            elif not self.synthetic:
                problems.append("data.val_degradation needs a synthetic source (embedded, folder), "
                                f"not {self.source!r}")
        if not 0 <= self.leaves <= 1:
            problems.append(f"data.leaves must be a share in [0, 1], got {self.leaves}")
        elif self.leaves and not self.synthetic:
            problems.append(f"data.leaves needs a synthetic source (embedded, folder), not {self.source!r}")
        if not 0 <= self.field_probability <= 1:
            problems.append(f"data.field_probability must be in [0, 1], got {self.field_probability}")
        if not 1 <= self.field_grid <= MAX_FIELD_GRID or not 0 <= self.max_roll_degrees <= 90:
            problems.append(f"data.field_grid must be in [1, {MAX_FIELD_GRID}] and data.max_roll_degrees in [0, 90], "
                            f"got {self.field_grid} and {self.max_roll_degrees}")
        for key in ("val_seed", "kernel_bank_seed"):
            if not 0 <= getattr(self, key) < 2**63:
                problems.append(f"data.{key} must be in [0, 2**63), got {getattr(self, key)}")
        if self.val_crops_per_photo > MAX_VAL_CROPS_PER_PHOTO:
            problems.append(f"data.val_crops_per_photo must be at most {MAX_VAL_CROPS_PER_PHOTO} (the validation set "
                            f"is made when the run starts), got {self.val_crops_per_photo}")
        if self.kernel_bank > 100_000:
            problems.append(f"data.kernel_bank must be at most 100000 kernels (drawn when the run starts), got "
                            f"{self.kernel_bank}")
        if self.kernel_bank and self.field_probability > 0:
            problems.append("data.kernel_bank holds single kernels; it cannot be combined with data.field_probability")
        if self.field_probability > 0 and self.blur_on_device:
            problems.append("data.field_probability needs data.blur_on_device off (fields are drawn in the loader "
                            "workers)")
        if self.on_bad not in ("fail", "skip"):
            problems.append(f"data.on_bad must be fail or skip, got {self.on_bad!r}")
        return problems
