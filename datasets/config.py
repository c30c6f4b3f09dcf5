"""The ``data:`` section of an experiment config."""

from __future__ import annotations

from dataclasses import dataclass, field

from .degradation import DegradationSpec
from .presets import PRESETS
from .sources import SOURCES, needs_problem

MAX_VAL_CROPS_PER_PHOTO = 1000


@dataclass
class DataConfig:
    # A name in datasets.sources.SOURCES. embedded: scikit-image's bundled photos, blurred on the fly; folder: every
    # image below sharp_dir, blurred on the fly; gopro: GOPRO_Large at root; realblur: RealBlur at root (its list
    # files); hide: HIDE_dataset at root; paired: root/blur and root/sharp with matching names, or pairs_file. See
    # docs/data.md for each layout.
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
    # datasets.presets.PRESETS, e.g. motion-v1) instead of the training mix, so the validation curve
    # and best.pt follow what that benchmark measures. null: the training mix.
    val_degradation: str | None = None
    # Synthetic sources (embedded, folder): how a sharp window is blurred, for the training pairs and (without
    # val_degradation) validation alike: kernels, extents, noise, JPEG, fields, a kernel bank. One definition,
    # datasets/degradation.py; configs that name these keys directly under data: still load (they move here).
    degradation: DegradationSpec = field(default_factory=DegradationSpec)
    # Synthetic sources: the share of training pairs cut from dead-leaves images (datasets/dead_leaves.py, painted
    # with the training photos' colours) instead of photos; validation stays on photos. 0: photos only.
    leaves: float = 0.0
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
        """Whether the source is sharp photos blurred on the fly by ``degradation`` (not pairs on disk)."""
        return self.source in SOURCES and SOURCES[self.source].synthetic

    def check(self) -> list[str]:
        problems = self.degradation.problems(lambda key: f"data.degradation.{key}")
        if self.source not in SOURCES:
            problems.append(f"data.source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        elif problem := needs_problem(self.source, SOURCES[self.source], self):
            problems.append(problem)
        if self.gopro_blur not in ("blur", "blur_gamma"):
            problems.append(f"data.gopro_blur must be blur or blur_gamma, got {self.gopro_blur!r}")
        if self.realblur_variant not in ("J", "R"):
            problems.append(f"data.realblur_variant must be J or R, got {self.realblur_variant!r}")
        for key in ("crop_size", "val_crops_per_photo"):
            if getattr(self, key) < 1:
                problems.append(f"data.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("train_pairs_per_epoch", "val_crop_size", "num_workers"):
            if getattr(self, key) < 0:
                problems.append(f"data.{key} must be >= 0, got {getattr(self, key)}")
        if self.blur_on_device and not self.synthetic:
            problems.append(f"data.blur_on_device needs a synthetic source ({synthetic_names()}), not {self.source!r}")
        if self.synthetic and self.val_crop_size < 1:
            problems.append("data.val_crop_size must be >= 1 for synthetic sources (whole images need pairs)")
        if not 0 < self.val_fraction < 1:
            problems.append(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.color_jitter < 0:
            problems.append(f"data.color_jitter must be >= 0, got {self.color_jitter}")
        if self.val_degradation is not None:
            if self.val_degradation not in PRESETS:
                problems.append(f"data.val_degradation must be null or one of {', '.join(sorted(PRESETS))}, got "
                                f"{self.val_degradation!r}")
            elif not self.synthetic:
                problems.append(f"data.val_degradation needs a synthetic source ({synthetic_names()}), "
                                f"not {self.source!r}")
        if not 0 <= self.leaves <= 1:
            problems.append(f"data.leaves must be a share in [0, 1], got {self.leaves}")
        elif self.leaves and not self.synthetic:
            problems.append(f"data.leaves needs a synthetic source ({synthetic_names()}), not {self.source!r}")
        if not 0 <= self.val_seed < 2**63:
            problems.append(f"data.val_seed must be in [0, 2**63), got {self.val_seed}")
        if self.val_crops_per_photo > MAX_VAL_CROPS_PER_PHOTO:
            problems.append(f"data.val_crops_per_photo must be at most {MAX_VAL_CROPS_PER_PHOTO} (the validation set "
                            f"is made when the run starts), got {self.val_crops_per_photo}")
        if self.degradation.field_probability > 0 and self.blur_on_device:
            problems.append("data.degradation.field_probability needs data.blur_on_device off (fields are drawn in "
                            "the loader workers)")
        if self.on_bad not in ("fail", "skip"):
            problems.append(f"data.on_bad must be fail or skip, got {self.on_bad!r}")
        return problems


def synthetic_names() -> str:
    return ", ".join(name for name, source in SOURCES.items() if source.synthetic)
