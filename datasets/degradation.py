"""What a degradation is: the one definition of the settings that turn a sharp window into a blurred observation.

``DegradationSpec`` is plain, typed data, validated here and nowhere else. It is the ``data.degradation`` section
of an experiment config, a published benchmark's preset (``datasets.presets``), and the degradation flags of
``python -m datasets.benchmark`` (made from its fields by ``add_flags``). ``datasets.synthetic.Degradation`` is
the same fields plus the random draws that apply them.

Configs written before the section existed name these keys directly under ``data:``; ``nest_degradation`` moves
them into ``data.degradation`` (the stated mapping: the same key names, one level down).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from core.choices import choice_problems
from core.errors import DataError

from .blur import NOISE_SPACES
from .kernels import EXTENT_LAWS, KERNEL_KINDS

NoiseSpace = Literal[(*NOISE_SPACES, "mixed")]  # mixed: one of the two per pair, even odds
ExtentLaw = Literal[EXTENT_LAWS]

MAX_FIELD_GRID = 16  # a field holds field_grid^2 kernels per pair
MAX_KERNEL_BANK = 100_000  # a bank is drawn when the run starts


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class DegradationSpec:
    """The settings of a synthetic degradation (see ``datasets.synthetic.Degradation`` for how they are drawn)."""

    kernel_size: int = field(default=21, metadata=_help(
        "odd kernel side; blurs reach at most (kernel_size - 3) / 2 px from the centre"))
    kernels: dict[str, float] = field(
        default_factory=lambda: {"trajectory": 0.7, "linear": 0.1, "gaussian": 0.1, "defocus": 0.1},
        metadata=_help(f"kernel kinds and relative frequencies, kind=weight (kinds: {', '.join(KERNEL_KINDS)})"))
    blur_extent: list[float] | None = field(default=None, metadata=_help(
        "motion extent [min, max] px, per pair (null: fill the kernel, up to kernel_size - 3)"))
    blur_extent_law: ExtentLaw = field(default="uniform", metadata=_help(
        "how motion extents are drawn in blur_extent: uniform or log"))
    noise_sigma: float = field(default=0.0, metadata=_help("Gaussian read noise, std U(0, this) per pair"))
    noise_space: NoiseSpace = field(default="linear", metadata=_help(
        "read noise on the sensor before the clip (linear), after the tone curve (srgb), or either per pair (mixed)"))
    poisson_peak: float = field(default=0.0, metadata=_help(
        "shot noise: photons at white, log-uniform in [peak, 100 peak] per pair (0: off)"))
    saturation: float = field(default=0.0, metadata=_help(
        "linear-light gain U(1, 1 + saturation) per pair: clipped highlights and streaks"))
    jpeg_quality: list[int] | None = field(default=None, metadata=_help(
        "JPEG re-compression of the blurred input, quality [min, max] (null: off)"))
    jpeg_probability: float = field(default=0.5, metadata=_help(
        "share of pairs re-compressed when jpeg_quality is set"))
    quantize: bool = field(default=False, metadata=_help(
        "round blurred inputs to 8-bit levels, as every image file a model is given is"))
    field_probability: float = field(default=0.0, metadata=_help(
        "share of pairs blurred by a spatially varying shake field (a walk plus a roll) instead of one kernel"))
    field_grid: int = field(default=3, metadata=_help("kernel lattice of a field: field_grid x field_grid"))
    max_roll_degrees: float = field(default=1.0, metadata=_help("camera roll of a field, at most this many degrees"))
    kernel_bank: int = field(default=0, metadata=_help(
        "a fixed family of this many kernels drawn once from the mix, one per pair (0: a new kernel every pair)"))
    kernel_bank_seed: int = field(default=0, metadata=_help("seed of the kernel bank's draws"))

    @property
    def margin(self) -> int:
        """Pixels a window needs beyond its output crop (the kernel's support minus one)."""
        return self.kernel_size - 1

    def problems(self, name: Callable[[str], str] = str) -> list[str]:
        """Every problem with these settings, each naming its key as ``name(key)`` does."""
        problems = choice_problems(self, name)
        for key in ("noise_sigma", "poisson_peak", "saturation", "jpeg_probability", "field_probability",
                    "max_roll_degrees"):
            if not math.isfinite(getattr(self, key)):
                return [*problems, f"{name(key)} must be a finite number, got {getattr(self, key)}"]
        if not isinstance(self.kernel_size, int) or self.kernel_size < 3 or self.kernel_size % 2 == 0:
            problems.append(f"{name('kernel_size')} must be odd and >= 3, got {self.kernel_size}")
        unknown = sorted(set(self.kernels) - set(KERNEL_KINDS))
        if unknown:
            problems.append(f"{name('kernels')}: unknown kind {unknown[0]!r}; known: {', '.join(KERNEL_KINDS)}")
        weights = list(self.kernels.values())
        if not all(isinstance(w, (int, float)) and w >= 0 for w in weights) or not sum(weights) > 0:
            problems.append(f"{name('kernels')} weights must be numbers >= 0 with a positive sum, got {self.kernels}")
        if self.blur_extent is not None:
            limit = self.kernel_size - 3
            if len(self.blur_extent) != 2 or not 1 <= self.blur_extent[0] <= self.blur_extent[1] <= limit:
                problems.append(f"{name('blur_extent')} must be [min, max] with 1 <= min <= max <= "
                                f"{name('kernel_size')} - 3 = {limit} px, got {list(self.blur_extent)}")
        if self.blur_extent_law != "uniform" and self.blur_extent is None:
            problems.append(f"{name('blur_extent_law')}={self.blur_extent_law} needs {name('blur_extent')} [min, max]")
        if self.jpeg_quality is not None and (
                len(self.jpeg_quality) != 2 or not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100):
            problems.append(f"{name('jpeg_quality')} must be [min, max] with 1 <= min <= max <= 100, got "
                            f"{list(self.jpeg_quality)}")
        for key in ("jpeg_probability", "field_probability"):
            if not 0 <= getattr(self, key) <= 1:
                problems.append(f"{name(key)} must be in [0, 1], got {getattr(self, key)}")
        for key in ("noise_sigma", "poisson_peak", "saturation"):
            if not getattr(self, key) >= 0:
                problems.append(f"{name(key)} must be >= 0, got {getattr(self, key)}")
        if not 1 <= self.field_grid <= MAX_FIELD_GRID:
            problems.append(f"{name('field_grid')} must be in [1, {MAX_FIELD_GRID}], got {self.field_grid}")
        if not 0 <= self.max_roll_degrees <= 90:
            problems.append(f"{name('max_roll_degrees')} must be in [0, 90], got {self.max_roll_degrees}")
        if not 0 <= self.kernel_bank <= MAX_KERNEL_BANK:
            problems.append(f"{name('kernel_bank')} must be in [0, {MAX_KERNEL_BANK}] kernels (drawn when the run "
                            f"starts), got {self.kernel_bank}")
        if not 0 <= self.kernel_bank_seed < 2**63:
            problems.append(f"{name('kernel_bank_seed')} must be in [0, 2**63), got {self.kernel_bank_seed}")
        if self.kernel_bank and self.field_probability > 0:
            problems.append(f"{name('kernel_bank')} holds single kernels; it cannot be combined with "
                            f"{name('field_probability')}")
        return problems


DEGRADATION_KEYS = tuple(f.name for f in dataclasses.fields(DegradationSpec))


def spec_values(spec: DegradationSpec) -> dict[str, Any]:
    """The fields of ``spec`` (or of a ``Degradation``) as keyword arguments."""
    return {key: getattr(spec, key) for key in DEGRADATION_KEYS}


def nest_degradation(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A ``data`` section written before ``data.degradation`` existed, with its degradation keys moved into that
    section (a copy; the input is not changed), and the problems found: a key given both ways is ambiguous."""
    flat = [key for key in DEGRADATION_KEYS if key in data]
    if not flat:
        return data, []
    nested = data.get("degradation")
    if nested is not None and not isinstance(nested, dict):
        return data, []  # the section's own type check reports it
    nested = dict(nested or {})
    problems = [f"data.{key} and data.degradation.{key} are both given; keep data.degradation.{key}"
                for key in flat if key in nested]
    moved = {key: value for key, value in data.items() if key not in flat}
    moved["degradation"] = {**{key: data[key] for key in flat}, **nested}
    return moved, problems


def flatten_degradation(data: dict[str, Any]) -> dict[str, Any]:
    """The inverse of ``nest_degradation`` on a section's plain values: the form every older record was written
    in (a copy)."""
    flat = {key: value for key, value in data.items() if key != "degradation"}
    flat.update(data.get("degradation") or {})
    return flat


# The command line: one flag for each field, named --kernel-size for kernel_size, parsed to the field's type.
def flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _kind_weight(item: str) -> tuple[str, float]:
    kind, sep, weight = item.partition("=")
    try:
        return kind, float(weight) if sep else 1.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"{item!r}: the weight must be a number (kind=weight)") from None


def add_flags(parser: argparse.ArgumentParser, base_description: str) -> None:
    """One flag per ``DegradationSpec`` field; each defaults to None (not given), so ``spec_from_flags`` can lay
    exactly the given ones over a base spec (``base_description`` says which, in the help)."""
    group = parser.add_argument_group("degradation", f"each overrides {base_description}")
    hints = typing.get_type_hints(DegradationSpec)
    for spec_field in dataclasses.fields(DegradationSpec):
        key, hint = spec_field.name, hints[spec_field.name]
        options: dict[str, Any] = {"help": spec_field.metadata["help"], "default": None}
        value_type = typing.get_args(hint)[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) else hint
        if key == "kernels":
            options.update(nargs="+", type=_kind_weight, metavar="KIND=WEIGHT")
        elif typing.get_origin(value_type) is list:
            (item,) = typing.get_args(value_type)
            options.update(nargs=2, type=item, metavar=("MIN", "MAX"))
        elif typing.get_origin(value_type) is Literal:
            options.update(choices=typing.get_args(value_type))
        elif value_type is bool:
            options.update(action=argparse.BooleanOptionalAction)
        else:
            options.update(type=value_type)
        group.add_argument(flag(key), dest=key, **options)


def spec_from_flags(args: argparse.Namespace, base: DegradationSpec) -> DegradationSpec:
    """``base`` with the degradation flags that were given laid over it; a DataError names a bad value's flag."""
    given = {key: getattr(args, key) for key in DEGRADATION_KEYS if getattr(args, key, None) is not None}
    if "kernels" in given:
        given["kernels"] = dict(given["kernels"])
    spec = dataclasses.replace(base, **given)
    problems = spec.problems(flag)
    if problems:
        raise DataError(problems[0])
    return spec


def changed_fields(spec: DegradationSpec, other: DegradationSpec) -> list[str]:
    """The fields in which two specs differ (extents and qualities compared as lists)."""
    def plain(value: Any) -> Any:
        return list(value) if isinstance(value, tuple) else value
    return [key for key in DEGRADATION_KEYS if plain(getattr(spec, key)) != plain(getattr(other, key))]
