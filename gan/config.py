"""Experiment configs: YAML files in configs/, checked against typed dataclasses, overridable from the command line.

Every key has a default here, so a config file only states what it changes. An unknown key or a value of the
wrong type is an error before any work starts.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from core.choices import choice_problems
from datasets.config import DataConfig
from datasets.degradation import DEGRADATION_KEYS, nest_degradation
from evaluation.offline_metrics import LOADERS
from losses.adversarial import GAN_TYPES
from losses.detail import DETAIL_LOSSES
from nets import network_options

from .errors import ConfigError

# Keys with a closed set of values are typed with these Literals: the one place each set is written (most are built
# from the registries they name), checked by choice_problems() and shown in the error.
Schedule = Literal["cosine", "plateau"]
PixelLoss = Literal["charbonnier", "psnr"]
AmpMode = Literal["off", "auto", "bf16", "fp16"]
GanType = Literal[tuple(GAN_TYPES)]
PerceptualCriterion = Literal["mse", "l1"]
PerceptualMetric = Literal[("none", *sorted(LOADERS))]


@dataclass
class ExperimentConfig:
    name: str | None = None  # default: <config file stem>-<date>-<time>, so a rerun never overwrites a run
    root: str = "experiments"
    seed: int = 0

    def check(self) -> list[str]:
        if not 0 <= self.seed < 2**63:
            return [f"experiment.seed must be in [0, 2**63), got {self.seed}"]
        return []


@dataclass
class TrainConfig:
    epochs: int = 10  # an epoch is data.train_pairs_per_epoch fresh random pairs
    batch_size: int = 4
    lr: float = 2e-4
    lr_min: float = 1e-6  # cosine annealing target at the last step (plateau: the floor)
    schedule: Schedule = "cosine"  # cosine (per step) | plateau (pretrain: per epoch, on validation PSNR)
    plateau_factor: float = 0.5
    plateau_patience: int = 2  # epochs without a better validation PSNR before the rate drops
    weight_decay: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # AdamW's; NAFNet trains with [0.9, 0.9]
    # Cosine over a global step: a run that continues a long one starts at start_step of a schedule_steps-long
    # cosine (0: the schedule is this run alone). warmup_steps ramp the rate linearly from 0 at this run's start,
    # for an optimiser whose moments start afresh.
    schedule_steps: int = 0
    start_step: int = 0
    warmup_steps: int = 0
    charbonnier_eps: float = 1e-3
    # The pretrain phase's pixel term: charbonnier (the baseline's) or psnr (NAFNet's: minus each image's PSNR,
    # losses/psnr_loss.py). The adversarial phase keeps Charbonnier (adv.w_charbonnier).
    pixel_loss: PixelLoss = "charbonnier"
    # Progressive crops: [[start, crop], ...], the run's progress (0 to 1) from which each crop size (px, at most
    # data.crop_size) is cut from every training pair, e.g. [[0, 64], [0.5, 112]]; [] trains on data.crop_size
    # throughout. Progress is the share of the run's steps done or, with train.max_minutes, of its minutes when
    # that is further along (then the switch follows the clock, so equal-time runs compare fairly).
    crop_schedule: list[list[float]] = field(default_factory=list)
    # Sharper-detail terms added to the pixel loss in both phases, by name with a weight (losses/detail.py):
    # gradient (Sobel edges), fft (Fourier spectrum, MIMO-UNet), tv (total variation), e.g. {gradient: 0.1}.
    detail_losses: dict[str, float] = field(default_factory=dict)
    grad_clip: float = 0.0  # max global gradient norm; 0 disables clipping
    max_bad_steps: int = 10  # consecutive non-finite steps (skipped) before the run stops, in either phase
    device: str = "auto"  # auto = cuda, then mps, then cpu
    threads: int = 0  # torch intra-op threads on CPU; 0 keeps torch's default
    # Stop cleanly (a checkpoint saved, exit 0) after this many minutes of training; 0: run every epoch. For a
    # stretch of a long run that must end in time (a lent GPU, a session).
    max_minutes: float = 0.0
    # Start the generator from these weights (a checkpoint or a bundled weights file; generator weights only, EMA
    # ones where it kept them): a new run, with its own optimiser and schedule. --pretrain only (--adv: adv.init).
    init: str | None = None
    ema_decay: float = 0.0  # EMA of the generator (e.g. 0.999; the decay ramps up to it, see ema_with_warmup)
    checkpoint_every: int = 0  # steps between mid-epoch checkpoints; 0: at epoch ends only
    keep_last: int = 2  # rolling step-NNNNNNNN.pt checkpoints kept (best.pt is kept besides)
    deterministic: bool = False  # torch.use_deterministic_algorithms: bit-exact resume on CPU, slower on CUDA
    # Speed (see docs/performance.md): autocast precision (fp16 uses a gradient scaler, CUDA only), the
    # channels_last memory format, and torch.compile of the generator. All off by default; what each gains depends
    # on the CPU (measured in docs/performance.md, "Training speed options").
    # auto: bf16 where it is native (AVX512-BF16 or AMX on a CPU, read from its flags; a bf16 GPU) and, on a CPU,
    # measured faster at the training batch shape when the trainer starts (gan/precision.py); fp32 elsewhere.
    amp: AmpMode = "off"
    channels_last: bool = False
    compile: bool = False

    def check(self) -> list[str]:
        problems = choice_problems(self, lambda key: f"train.{key}")
        for key in ("epochs", "batch_size", "max_bad_steps", "keep_last"):
            if getattr(self, key) < 1:
                problems.append(f"train.{key} must be >= 1, got {getattr(self, key)}")
        if not self.lr > 0:
            problems.append(f"train.lr must be > 0, got {self.lr}")
        if not 0 <= self.lr_min <= self.lr:
            problems.append(f"train.lr_min must be in [0, train.lr], got {self.lr_min}")
        for name, weight in self.detail_losses.items():
            if name not in DETAIL_LOSSES:
                problems.append(f"train.detail_losses: unknown loss {name!r}; known: {', '.join(DETAIL_LOSSES)}")
            elif not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
                problems.append(f"train.detail_losses.{name} must be a number >= 0, got {weight!r}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            problems.append(f"train.betas must be two numbers in [0, 1), got {self.betas}")
        for key in ("schedule_steps", "start_step", "warmup_steps"):
            if getattr(self, key) < 0:
                problems.append(f"train.{key} must be >= 0, got {getattr(self, key)}")
        if self.schedule_steps and self.start_step >= self.schedule_steps:
            problems.append(f"train.start_step ({self.start_step}) must be below train.schedule_steps "
                            f"({self.schedule_steps}): the schedule would already be over")
        if self.schedule != "cosine" and (self.schedule_steps or self.start_step or self.warmup_steps):
            problems.append("train.schedule_steps, start_step and warmup_steps need train.schedule=cosine")
        if not 0 < self.plateau_factor < 1 or self.plateau_patience < 0:
            problems.append("train.plateau_factor must be in (0, 1) and train.plateau_patience >= 0")
        if self.weight_decay < 0 or self.grad_clip < 0 or self.charbonnier_eps <= 0:
            problems.append("train.weight_decay and train.grad_clip must be >= 0, train.charbonnier_eps > 0")
        problems += crop_schedule_problems(self.crop_schedule)
        if not 0 <= self.ema_decay < 1:
            problems.append(f"train.ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0 <= self.max_minutes < float("inf"):
            problems.append(f"train.max_minutes must be a number of minutes >= 0 (0: no limit), got {self.max_minutes}")
        if self.checkpoint_every < 0:
            problems.append(f"train.checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if self.device not in ("auto", "cpu", "mps") and not self.device.startswith("cuda"):
            problems.append(f"train.device must be auto, cpu, mps or cuda[:N], got {self.device!r}")
        return problems


def crop_schedule_problems(schedule: list[list[float]]) -> list[str]:
    """train.crop_schedule: pairs of a start in [0, 1) (the first 0, rising) and a whole number of pixels >= 16."""
    if not schedule:
        return []
    shaped = all(len(entry) == 2 for entry in schedule)
    starts = [entry[0] for entry in schedule] if shaped else []
    crops = [entry[1] for entry in schedule] if shaped else []
    if (not shaped or starts[0] != 0 or any(not 0 <= s < 1 for s in starts)
            or any(b <= a for a, b in zip(starts, starts[1:]))
            or any(c != int(c) or c < 16 for c in crops)):
        return [f"train.crop_schedule must be [[start, crop], ...] with starts rising from 0 below 1 and whole crops "
                f">= 16 px, e.g. [[0, 64], [0.5, 112]]; got {schedule}"]
    return []


@dataclass
class AdvConfig:
    """Phase 2 (``--adv``). Loss weights follow DeblurGAN-v2 (0.01 adversarial, 0.006 perceptual), with our
    Charbonnier term in the place of its 0.5-weighted MSE; n_critic 5 and lambda 10 are DeblurGAN's and WGAN-GP's."""

    init: str | None = None  # pretrain checkpoint, or a pretrain experiment folder (its best.pt); default: newest
    gan_type: GanType = "wgan-gp"  # ragan-ls is DeblurGAN-v2's
    # Free-form like model: "name" picks a registered critic, the other keys are its keyword arguments.
    critic: dict[str, Any] = field(default_factory=lambda: {"name": "patchgan"})
    n_critic: int = 5  # critic updates per generator update, on the same batch (as DeblurGAN)
    gp_weight: float = 10.0
    drift: float = 0.0  # e.g. 1e-3: penalises E[D(real)^2] so Wasserstein scores stay near zero
    clip_value: float = 0.01  # wgan-clip only
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])  # DeblurGAN; WGAN-GP's paper: [0.0, 0.9]
    w_adv: float = 0.01
    w_perceptual: float = 0.006
    w_charbonnier: float = 1.0
    # pix2pixHD feature matching: L1 between the critic's activations on real and restored images (no ImageNet weights)
    w_feature_matching: float = 0.0
    perceptual_layers: list[str] = field(default_factory=lambda: ["conv3_3"])
    perceptual_criterion: PerceptualCriterion = "mse"
    vgg_weights: str = "imagenet"  # imagenet | PATH | random (random: plumbing tests only, not a real loss)
    vgg_download: bool = True  # fetch torchvision's file into $TORCH_HOME when it is missing and the network allows

    def check(self) -> list[str]:
        problems = choice_problems(self, lambda key: f"adv.{key}")
        if self.n_critic < 1:
            problems.append(f"adv.n_critic must be >= 1, got {self.n_critic}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            problems.append(f"adv.betas must be two numbers in [0, 1), got {self.betas}")
        for key in ("lr_g", "lr_d"):
            if not getattr(self, key) > 0:
                problems.append(f"adv.{key} must be > 0, got {getattr(self, key)}")
        for key in ("w_adv", "w_perceptual", "w_charbonnier", "w_feature_matching", "gp_weight", "drift", "clip_value"):
            if getattr(self, key) < 0:
                problems.append(f"adv.{key} must be >= 0, got {getattr(self, key)}")
        return problems


@dataclass
class LogConfig:
    scalar_every: int = 10  # steps between TensorBoard scalar writes
    progress_every: int = 50  # steps between progress lines when stderr is not a terminal (no progress bar)
    val_images: int = 4  # validation pairs shown as blurred | restored | sharp rows
    lpips: bool = True  # also score validation with LPIPS when its ImageNet weights are there (costs time)
    # none | flip | cvvdp: an offline perceptual metric on validation too (val/flip or val/jod in TensorBoard;
    # docs/evaluation.md, Metrics). Off by default: its package is an extra, and it adds to each validation.
    perceptual: PerceptualMetric = "none"

    def check(self) -> list[str]:
        problems = choice_problems(self, lambda key: f"log.{key}")
        for key in ("scalar_every", "progress_every"):
            if getattr(self, key) < 1:
                problems.append(f"log.{key} must be >= 1, got {getattr(self, key)}")
        return problems


@dataclass
class Config:
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    # Free-form: "name" picks a registered network, every other key is one of its keyword arguments.
    model: dict[str, Any] = field(default_factory=lambda: {"name": "light_unet"})
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    adv: AdvConfig = field(default_factory=AdvConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# YAML aliases (*name) are references: a few hundred bytes of nested aliases ("billion laughs") describe a value of
# billions of items that every later walk over the config would expand. No config needs more than a few.
MAX_YAML_ALIASES = 32
MAX_ECHO = 200  # characters of a value an error message repeats back


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses more than MAX_YAML_ALIASES aliases (a ``yaml.YAMLError``)."""
    aliases = sum(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader))
    if aliases > MAX_YAML_ALIASES:
        raise yaml.YAMLError(f"it uses {aliases} aliases (*name), more than the {MAX_YAML_ALIASES} a config may")
    return yaml.safe_load(text)


def _shorten(problem: str) -> str:
    return problem if len(problem) <= 3 * MAX_ECHO else problem[: 3 * MAX_ECHO] + "... (cut)"


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """Defaults, then the YAML file, then ``section.key=value`` overrides (values parsed as YAML)."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            raw = load_yaml(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except IsADirectoryError:
            raise ConfigError(f"config file {path} is a folder, not a YAML file") from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file {path} is not UTF-8 text (is it a YAML file?)") from None
        except OSError as error:
            raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"config file {path} is not valid YAML: {str(error).splitlines()[0]}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(raw).__name__}")
        raw = nested_config(raw)  # before the overrides, which may use either spelling
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        # section.key=value, or deeper into a mapping: adv.critic.n_layers=4
        *path, name = key.split(".")
        if path == ["data"] and name in DEGRADATION_KEYS:  # the older spelling of data.degradation.<key>
            path = ["data", "degradation"]
        target = raw
        for depth, part in enumerate(path):
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"override {item!r}: config section {'.'.join(path[: depth + 1])!r} is not a mapping")
        try:
            target[name] = load_yaml(value)
        except yaml.YAMLError as error:
            reason = str(error).splitlines()[0]
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({reason})") from None
    return config_from_dict(raw)


def config_from_dict(raw: dict[str, Any]) -> Config:
    """The checked config; every problem found is reported at once, in one ``ConfigError`` line."""
    problems: list[str] = []
    config = _build(Config, nested_config(raw), "", problems)
    config.model = _check_network(config.model, "model", "light_unet", problems)
    config.adv.critic = _check_network(config.adv.critic, "adv.critic", "patchgan", problems)
    # Ill-typed values were left at their defaults above, so the sections' own checks see well-typed values.
    problems += (config.experiment.check() + config.data.check() + config.train.check() + config.adv.check()
                 + config.log.check())
    too_large = [entry[-1] for entry in config.train.crop_schedule if entry and entry[-1] > config.data.crop_size]
    if too_large:
        problems.append(f"train.crop_schedule: crops {too_large} px are larger than data.crop_size "
                        f"({config.data.crop_size} px), the pairs they are cut from")
    problems = [_shorten(problem) for problem in problems]  # a value echoed back is never a flood
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError(f"{len(problems)} config problems: " + "; ".join(problems[:10])
                          + (f"; and {len(problems) - 10} more" if len(problems) > 10 else ""))
    return config


def nested_config(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with a data section written before ``data.degradation`` existed moved into the new shape (a copy;
    the degradation keys go one level down, names unchanged). A key given in both places is an error."""
    if not isinstance(raw.get("data"), dict):
        return raw
    data, problems = nest_degradation(raw["data"])
    if problems:
        raise ConfigError(problems[0])
    return {**raw, "data": data}


def _check_network(section: dict[str, Any], prefix: str, default_name: str, problems: list[str]) -> dict[str, Any]:
    """A free-form network section: ``name`` must be registered, other keys must be its keyword arguments."""
    merged = {"name": default_name, **section}
    name = merged["name"]
    try:
        options = network_options(name)
    except ValueError as error:
        problems.append(f"{prefix}.name: {error}")
        return merged
    for key, value in merged.items():
        if key == "name":
            continue
        if not _all_finite(value):
            problems.append(f"{prefix}.{key} must be finite, got {value!r}")
        elif key not in options:
            problems.append(f"unknown config key '{prefix}.{key}' for network {name!r}; it takes: "
                            f"{', '.join(options)}")
        elif options[key] is not None and not _matches(value, type(options[key])):
            problems.append(f"{prefix}.{key} must be {type(options[key]).__name__}, got {value!r}")
    return merged


def _build(cls: type, raw: Any, prefix: str, problems: list[str]) -> Any:
    """``cls`` from the mapping ``raw``; each unknown key or ill-typed value is added to ``problems`` and left at
    its default, so one pass finds them all."""
    if not isinstance(raw, dict):
        problems.append(f"config section '{prefix.rstrip('.') or 'top level'}' must be a mapping, got {raw!r}")
        return cls()
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    problems += [f"unknown config key '{prefix}{key}'; known keys here: {', '.join(sorted(known))}"
                 for key in sorted(set(raw) - known)]
    values = {}
    for key, value in raw.items():
        if key not in known:
            continue
        hint = hints[key]
        value = _coerce_float(value, hint)
        if not _all_finite(value):
            problems.append(f"config key '{prefix}{key}' must be finite, got {value!r}")
        elif dataclasses.is_dataclass(hint):
            values[key] = _build(hint, value, f"{prefix}{key}.", problems)
        elif not _matches(value, hint):
            # YAML 1.1 reads off/on/yes/no as booleans: say so, since train.amp=off looks right and is not.
            quote = (f"; YAML reads off, on, yes and no as booleans, so quote the word: {prefix}{key}='off'"
                     if isinstance(value, bool) and _matches("text", hint) else "")
            problems.append(f"config key '{prefix}{key}' must be {_describe(hint)}, got {value!r}{quote}")
        else:
            values[key] = float(value) if hint is float else value
    return cls(**values)


def _all_finite(value: Any) -> bool:
    """No inf or nan anywhere in a value (YAML reads .inf and .nan as floats, and 'inf' coerces to one)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_all_finite(v) for v in value)
    return True


def _coerce_float(value: Any, hint: Any) -> Any:
    """PyYAML follows YAML 1.1, where ``1e-3`` (no dot) is a string; accept it where a float is expected."""
    if isinstance(value, str) and (hint is float or float in typing.get_args(hint)):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is Literal:  # the type here; which of the choices is choice_problems()' job, with the choices named
        return any(isinstance(value, type(choice)) and not isinstance(value, bool) for choice in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, option) for option in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(option) for option in typing.get_args(hint))
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))


def save_config(config: Config, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
