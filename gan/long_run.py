"""One long training run that adds up across interruptions, sessions and machines.

A long run is a pretrain config with ``train.schedule_steps`` (one cosine over a global step) and a fixed
``experiment.name``. ``train_gan.py --pretrain --continue-shipped`` continues it in one command:

- where its folder survives (the same machine), it resumes exactly from the newest checkpoint;
- where it does not (a fresh machine), it starts a new stretch from ``train.init`` (the shipped weights) at the
  global step those weights record, with a fresh optimiser warmed up over ``train.warmup_steps``, and says so.

A config of another recipe is refused, except with ``--adopt-recipe``: the recipe chosen by measurement takes over
the long run from the shipped weights at their global step, on the same schedule, and every stretch records the
recipe it trained with.

Every checkpoint records the position (``long_run``: the recipe's hash, the global step, the schedule's length and
every stretch so far: its steps, hours and CPU); release.bundled copies it into the shipped file and its card.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.checkpoint import load_checkpoint, step_checkpoints
from datasets.degradation import flatten_degradation

from .config import Config
from .errors import ConfigError, ExperimentError

# Keys that say where or how long one stretch runs, or how its work is spread, not what the recipe computes: a
# continuation changes them, so the recipe's hash leaves them out.
NOT_RECIPE = {
    "experiment": ("name", "root", "seed"),
    "train": ("init", "start_step", "epochs", "warmup_steps", "threads", "device", "checkpoint_every", "keep_last",
              "compile", "channels_last", "max_minutes"),
    "data": ("num_workers",),
    "log": ("scalar_every", "progress_every", "val_images", "lpips", "perceptual"),
}
# The scale of a stretch, sized to its machine: a GPU stretch trains larger batches of larger crops, blurred on the
# GPU in bf16, with longer epochs (gan/gpu_stretch.py). The pairs come from the same photos, kernels and noise and
# the loss and schedule are the same, so the hash leaves these out too; every stretch records its batch and crop.
STRETCH_SCALE = {
    "train": ("batch_size", "amp"),
    "data": ("crop_size", "blur_on_device", "train_pairs_per_epoch"),
}

# Recipe keys that came after long runs had begun, with the default that computes what the code before them did: at
# that default they are left out of the hash, so every older record still matches its recipe.
LATER_KEYS = {
    "train": {"pixel_loss": "charbonnier", "crop_schedule": []},
}


def _hash_without(config: Config, *left_out: dict[str, tuple[str, ...]]) -> str:
    recipe = copy.deepcopy(config.to_dict())
    # Hashed in the flat form every record was written in before data.degradation existed, so a run's hash
    # survives the section's move.
    recipe["data"] = flatten_degradation(recipe["data"])
    for section, defaults in LATER_KEYS.items():
        for key, default in defaults.items():
            if recipe[section].get(key) == default:
                del recipe[section][key]
    for keys_of in left_out:
        for section, keys in keys_of.items():
            for key in keys:
                recipe[section].pop(key, None)
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def recipe_hash(config: Config) -> str:
    """16 hex digits of sha256 over the config without ``NOT_RECIPE``'s and ``STRETCH_SCALE``'s keys: equal
    exactly for stretches of one long run."""
    return _hash_without(config, NOT_RECIPE, STRETCH_SCALE)


def same_recipe(config: Config, state: dict[str, Any]) -> bool:
    """Whether a checkpoint or shipped file (``state``) is a stretch of ``config``'s recipe. Records written before
    stretches could change their scale hashed the scale in: for those, the config is hashed that way with the
    scale the record's own config had."""
    recorded = (state.get("long_run") or {}).get("recipe")
    if recorded == recipe_hash(config):
        return True
    saved = state.get("config")
    if not isinstance(saved, dict):
        return False
    scaled = copy.deepcopy(config)
    for section, keys in STRETCH_SCALE.items():
        for key in keys:
            if key in (saved.get(section) or {}):
                setattr(getattr(scaled, section), key, saved[section][key])
    return recorded == _hash_without(scaled, NOT_RECIPE)


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's processor string elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device) -> str:
    """What a stretch ran on, for its record: the CPU's or GPU's model name."""
    if device.type == "cuda":
        import torch

        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {cpu_name()}" if device.type == "cpu" else device.type


@dataclass
class Stretch:
    """One stretch of the long run, as recorded in checkpoints and on the model card."""

    started: str  # UTC date and time
    device: str
    first_step: int  # global step at its start
    last_step: int
    seconds: float
    batch_size: int = 0  # the stretch's scale (STRETCH_SCALE); 0 in records written before it was kept
    crop_size: int = 0
    recipe: str = ""  # recipe_hash of the config it trained with

    @classmethod
    def begin(cls, global_step: int, device: str, batch_size: int = 0, crop_size: int = 0,
              recipe: str = "") -> "Stretch":
        return cls(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), device, global_step, global_step, 0.0,
                   batch_size, crop_size, recipe)


def previous_stretches(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The stretches a checkpoint or shipped file records (none before the long run began). A stretch recorded
    before stretches named their recipe trained with the record's (recipes could not change then)."""
    record = state.get("long_run") if isinstance(state, dict) else None
    if not isinstance(record, dict):
        return []
    return [{**stretch, "recipe": stretch.get("recipe") or record.get("recipe", "")}
            for stretch in record.get("stretches", [])]


def _shipped_step(init: str | None, config: Config) -> int | None:
    """The global step the shipped weights record, where they are a stretch of this recipe (else None)."""
    if not init or not Path(init).is_file():
        return None
    shipped = load_checkpoint(init)
    record = shipped.get("long_run")
    return int(record["global_step"]) if isinstance(record, dict) and same_recipe(config, shipped) else None


def continuation(config: Config, say=print, adopt: bool = False) -> tuple[Path | None, Config]:
    """What ``--continue-shipped`` does with ``config``: (the run folder to resume exactly, None) where it
    survives, else (None, the config of a new stretch from the shipped weights). A ``ConfigError`` or
    ``ExperimentError`` when the config, the shipped weights or the run folder do not belong to one long run.

    ``adopt`` (``--adopt-recipe``): ``config`` is a new recipe for the shipped weights' long run, on the same
    schedule from their global step. The run folder of the old recipe must have been exported and moved aside
    first: nothing of it is resumed or replaced."""
    train = config.train
    if not train.schedule_steps:
        raise ConfigError("--continue-shipped needs a long run's config: train.schedule_steps (the schedule's "
                          "length in global steps) is not set")
    if not config.experiment.name:
        raise ConfigError("--continue-shipped needs experiment.name in the config: the long run's folder")
    recipe = recipe_hash(config)
    folder = Path(config.experiment.root) / config.experiment.name
    if adopt:
        return None, _adoption(config, folder, say)
    found = step_checkpoints(folder / "checkpoints") if (folder / "checkpoints").is_dir() else []
    if found:
        newest = load_checkpoint(found[0])
        saved = newest.get("long_run") or {}
        if not same_recipe(config, newest):
            raise ExperimentError(f"run folder {folder} holds recipe {saved.get('recipe')}, the config is recipe "
                                  f"{recipe}: they are not one long run (move the folder or restore the config)")
        ahead = _shipped_step(train.init, config)
        if ahead is not None and ahead > saved.get("global_step", 0):
            here = saved.get("global_step", 0)
            raise ExperimentError(f"{train.init} is at global step {ahead}, ahead of run folder {folder} (global step "
                                  f"{here}): a stretch elsewhere (a GPU) continued the long run; move the folder "
                                  f"aside (mv {folder} {folder}-{here}) and run again to continue from it")
        return folder, config
    if not train.init:
        raise ConfigError("--continue-shipped needs train.init: the shipped weights a fresh machine continues from")
    shipped = load_checkpoint(train.init)
    record = shipped.get("long_run")
    if record is None:
        start = 0
        say(f"continuing {train.init} as global step 0 of a {train.schedule_steps}-step schedule (it records no "
            "long run: it is where this one begins)")
    else:
        _check_schedule(train, record)
        if not same_recipe(config, shipped):
            raise ExperimentError(f"{train.init} was trained with recipe {record.get('recipe')}, the config is recipe "
                                  f"{recipe}: continuing would silently start another schedule (--adopt-recipe takes "
                                  "a new recipe up on purpose)")
        start = int(record["global_step"])
        say(f"no run folder {folder}: continuing {train.init} at global step {start} of {train.schedule_steps} "
            f"with a fresh optimiser, warmed up over {train.warmup_steps} steps")
    return None, _stretch_from(config, start)


def _check_schedule(train, record: dict[str, Any]) -> None:
    """An ``ExperimentError`` unless the shipped weights' long run is on the config's schedule."""
    if record.get("schedule_steps") != train.schedule_steps:
        raise ExperimentError(f"{train.init} is on a {record.get('schedule_steps')}-step schedule, the config says "
                              f"train.schedule_steps={train.schedule_steps}")


def _adoption(config: Config, folder: Path, say) -> Config:
    """The config of the first stretch of ``config``'s recipe, continuing the shipped weights' long run (its new
    run folder: ``folder``)."""
    train = config.train
    if not train.init:
        raise ConfigError("--adopt-recipe needs train.init: the long run's shipped weights the new recipe continues")
    if folder.exists():
        raise ExperimentError(f"--adopt-recipe starts a new folder {folder}, which exists: export its newest "
                              f"checkpoint (python -m release.bundled --checkpoint ... --model long-run), then move "
                              f"it aside (mv {folder} {folder}-before)")
    shipped = load_checkpoint(train.init)
    record = shipped.get("long_run")
    if not isinstance(record, dict):
        raise ExperimentError(f"--adopt-recipe: {train.init} records no long run to continue (plain "
                              "--continue-shipped starts one from it)")
    _check_schedule(train, record)
    if same_recipe(config, shipped):
        raise ExperimentError(f"--adopt-recipe: {train.init} is recipe {record.get('recipe')} already; "
                              "--continue-shipped alone continues it")
    start = int(record["global_step"])
    say(f"adopting recipe {recipe_hash(config)} (was {record.get('recipe')}): continuing {train.init} at global step "
        f"{start} of {train.schedule_steps} with a fresh optimiser, warmed up over {train.warmup_steps} steps")
    return _stretch_from(config, start)


def _stretch_from(config: Config, start: int) -> Config:
    """``config`` as a stretch from global step ``start``: the rest of the schedule, fresh pairs."""
    train = config.train
    if start >= train.schedule_steps:
        raise ExperimentError(f"{train.init} is at global step {start}: the {train.schedule_steps}-step schedule "
                              "is complete")
    stretch = copy.deepcopy(config)
    stretch.train.start_step = start
    steps_per_epoch = max(1, stretch.data.train_pairs_per_epoch // stretch.train.batch_size)
    stretch.train.epochs = math.ceil((train.schedule_steps - start) / steps_per_epoch)
    # Fresh pairs, not the first stretch's again, come from train.start_step (gan/loaders.py); experiment.seed
    # stays, so every stretch holds out the same validation photos.
    return stretch
