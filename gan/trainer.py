"""The training engine's loop: devices, data loading, the epochs, TensorBoard and the progress shown.

``Trainer`` is made of parts, one module each: ``guarded_steps`` (the optimiser step and its bad-step policy),
``validation`` (scores and their logging), ``trainer_state`` (what a checkpoint holds, saving and resuming) and
``stopping`` (signals and ``train.max_minutes``). A phase subclasses it and implements ``train_step``. The pretrain
phase (Charbonnier only, the "Charbonnier LightUNet baseline") is ``pretrain.PretrainTrainer``; the adversarial
phase is in ``adversarial.py``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from core.cpu_allocator import reuse_freed_memory
from core.device import pick_device
from datasets.synthetic import synthesize_batch
from nets import build_network

from .checkpoint import load_init_weights, remove_stale_temporaries
from .config import Config
from .crop_schedule import crop_at, random_windows
from .distributed import any_true, init_distributed
from .errors import ConfigError
from .experiment import Experiment
from .guarded_steps import GuardedSteps
from .interrupt import GracefulInterrupt
from .loaders import build_loaders
from .long_run import Stretch, device_name, previous_stretches, recipe_hash
from .precision import choose_precision
from .rng import capture_rng_state, restore_rng_state
from .stopping import Stopping
from .trainer_state import TrainerState
from .validation import Scores, Validation


class Trainer(GuardedSteps, Validation, TrainerState, Stopping):
    """Runs a phase's epochs on one device (or one torchrun rank) from a typed config and an experiment folder.

    The hooks a phase overrides: ``build_generator`` (the network, e.g. from ``adv.init``), ``train_step`` (one
    batch: losses and ``optimise``; returns the scalars to log), ``score_references`` (what validation compares
    with), ``validate``, ``after_validation`` (a schedule that steps on validation), ``epoch_summary`` (the epoch's
    line), ``replicated_modules`` (what torchrun ranks must hold identically), and ``state`` / ``restore`` (what a
    checkpoint adds: optimisers, schedulers, a critic).
    """

    phase = "base"

    def __init__(self, config: Config, experiment: Experiment):
        self.config = config
        self.experiment = experiment
        self._init_stretches: list[dict] = []  # the long run's stretches behind train.init (build_generator)
        self._set_up_runtime()
        self._set_up_generator()
        self._set_up_precision()
        self._set_up_data()
        self._reset_progress()
        self._set_up_validation_metrics()
        self.writer: SummaryWriter | None = None  # opened by fit(): setup writes nothing to disk
        self.blurry_scores: Scores | None = None  # the reference, scored by fit() before the first step

    def _set_up_runtime(self) -> None:
        """Seed, threads, determinism, the process group and the device."""
        config = self.config
        torch.manual_seed(config.experiment.seed)
        if config.train.threads > 0:
            torch.set_num_threads(config.train.threads)
        if config.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        self.world = init_distributed(config.train.device)
        self.device = pick_device(config.train.device)
        if self.world.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.world.local_rank)
        if self.device.type == "cpu":
            reuse_freed_memory()  # see core/cpu_allocator.py and train.channels_last's note in gan/config.py

    def _set_up_generator(self) -> None:
        """The generator in its memory format, wrapped for DDP and torch.compile where asked, and its EMA."""
        config = self.config
        self.memory_format = torch.channels_last if config.train.channels_last else torch.contiguous_format
        self.generator = self.build_generator().to(self.device, memory_format=self.memory_format)
        # What the training steps call: under torchrun, DDP averages the generator's gradients during backward.
        self.training_generator = (
            DistributedDataParallel(self.generator,
                                    device_ids=[self.device.index] if self.device.type == "cuda" else None)
            if self.world.enabled
            else self.generator
        )
        if config.train.compile:
            self.training_generator = torch.compile(self.training_generator)
        decay = config.train.ema_decay
        self.ema = (
            AveragedModel(self.generator, multi_avg_fn=ema_with_warmup(decay), use_buffers=True)
            if decay > 0
            else None
        )

    def _set_up_precision(self) -> None:
        """train.amp: the autocast dtype (auto measures on this device) and the fp16 gradient scalers."""
        config = self.config
        if config.train.amp == "fp16" and self.device.type != "cuda":
            raise ConfigError(f"train.amp=fp16 needs a CUDA device, not {self.device.type}; use bf16, auto or off")
        def timing_sample() -> torch.Tensor:
            # Its own generator: timing must not move the global RNG stream that seeds everything after it.
            sample = torch.rand(config.train.batch_size, 3, config.data.crop_size, config.data.crop_size,
                                generator=torch.Generator().manual_seed(0))
            return sample.to(self.device).contiguous(memory_format=self.memory_format)

        self.precision = choose_precision(config.train.amp, self.device, self.generator, timing_sample)
        self.amp_dtype = self.precision.dtype
        if self.world.is_main and config.train.amp == "auto":
            print(f"train.amp=auto: {self.precision.reason}", flush=True)
        # fp16 gradients underflow without loss scaling; one scaler per optimiser (see optimise()).
        self.grad_scalers: dict[int, torch.amp.GradScaler] = {}
        self._saved_scalers: list[dict] = []  # a resumed run's, in the order the optimisers first stepped

    def _set_up_data(self) -> None:
        """The datasets and their loaders; the run's length in steps follows from them."""
        data = build_loaders(self.config, self.world, self.device)
        self.train_set, self.val_set, self.data_split = data.train_set, data.val_set, data.split
        self.sampler, self.train_loader, self.val_loader = data.sampler, data.train_loader, data.val_loader
        self.steps_per_epoch = len(self.train_loader)
        self.total_steps = self.config.train.epochs * self.steps_per_epoch

    def _reset_progress(self) -> None:
        """Counters at the start of a run (a resumed run's restore() overwrites them)."""
        self.step = 0
        self.epoch = 0  # the epoch in progress (epochs completed, at an epoch end)
        self.batch_in_epoch = 0  # steps done in it
        self.running_loss = 0.0  # their summed loss, for the epoch's mean
        self.best_psnr = -math.inf
        self.bad_steps = 0
        self.resumed_from: Path | None = None
        self.scores: Scores | None = None
        self.stretches = self._init_stretches  # earlier stretches of the long run (a resumed run: its own)
        self.stretch: Stretch | None = None  # this one, from fit()

    def build_generator(self) -> nn.Module:
        options = dict(self.config.model)
        try:
            generator = build_network(options.pop("name"), **options)
        except ValueError as error:
            raise ConfigError(f"model: {error}") from None
        if self.config.train.init:
            init = load_init_weights(generator, self.config.train.init, self.config.model["name"])
            self._init_stretches = previous_stretches(init)
        return generator

    # -- the loop -------------------------------------------------------------------------------------------

    def train_step(self, blur: torch.Tensor, sharp: torch.Tensor) -> dict[str, float]:
        raise NotImplementedError

    def after_validation(self, scores: Scores) -> None:
        """Called after every epoch's validation, before the checkpoint is saved (a schedule may step on it)."""

    def epoch_summary(self, scores: Scores) -> str:
        name = self.perceptual_name
        return f"val {scores.describe(name)}  (blurry input: {self.blurry_scores.describe(name)})"

    @property
    def eval_generator(self) -> nn.Module:
        """The weights validation scores and checkpoints offer for inference: the EMA when enabled."""
        return self.ema.module if self.ema is not None else self.generator

    def fit(self) -> Scores:
        """Train from the current position (0, or a restored checkpoint's) to the last epoch.

        SIGINT/SIGTERM stop after the current step with a checkpoint saved (``Interrupted``); a second exits.
        """
        config = self.config
        main = self.world.is_main  # under torchrun, rank 0 alone writes the folder, events and checkpoints
        if self.blurry_scores is None:
            # Scoring (and building a reference network) draws random numbers; a resumed run has just restored
            # every generator's state, so the references leave it exactly as they found it.
            rng = capture_rng_state()
            self.score_references()
            restore_rng_state(rng)
        if main and self.resumed_from is None:
            self.experiment.start(config, data_split=self.data_split)
        if main:
            remove_stale_temporaries(self.experiment.checkpoints)
        # purge_step hides the events a killed predecessor logged after the checkpoint this run resumed from.
        purge_step = self.global_step + 1 if self.resumed_from is not None else None
        self.writer = SummaryWriter(str(self.experiment.tensorboard), purge_step=purge_step) if main else NullWriter()
        interactive = sys.stderr.isatty() and main
        progress = tqdm(total=self.total_steps, initial=self.step, desc=self.phase, unit="step",
                        disable=not interactive)
        self.started, self.start_step = time.monotonic(), self.step
        self.stretch = Stretch.begin(self.global_step, device_name(self.device), config.train.batch_size,
                                     config.data.crop_size, recipe_hash(config))
        try:
            with GracefulInterrupt() as interrupt:
                for epoch in range(self.epoch, config.train.epochs):
                    self.epoch = self.sampler.epoch = epoch
                    self.sampler.start = self.batch_in_epoch * config.train.batch_size
                    self.generator.train()
                    for batch in self.train_loader:
                        self._train_one(batch, progress)
                        if self.batch_in_epoch == self.steps_per_epoch:
                            break  # the epoch end saves; an interruption now waits for it
                        if any_true(bool(interrupt.requested), self.world, self.device):  # all ranks stop together
                            self._stop(interrupt)
                        if self._out_of_time():
                            self._stop_in_time()
                        if config.train.checkpoint_every and self.step % config.train.checkpoint_every == 0:
                            self.save()
                    self._end_epoch(progress, interactive)
                    stop = any_true(bool(interrupt.requested), self.world, self.device)
                    if stop and self.epoch < config.train.epochs:
                        self._stop(interrupt, saved=True)
                    if self.epoch < config.train.epochs and self._out_of_time():
                        self._stop_in_time(saved=True)
        finally:
            # Also on divergence or an interruption: the curves that explain the run reach the disk.
            progress.close()
            self.writer.close()
        return self.scores

    @property
    def global_step(self) -> int:
        """The step on the long run's schedule (``train.start_step`` + this run's steps); the step of every logged
        scalar, so the curves of successive stretches join up."""
        return self.config.train.start_step + self.step

    def long_run_record(self) -> dict[str, Any]:
        """The position on the long schedule, saved in every checkpoint (gan/long_run.py)."""
        stretches = list(self.stretches)
        if getattr(self, "stretch", None) is not None:
            self.stretch.last_step, self.stretch.seconds = self.global_step, time.monotonic() - self.started
            stretches.append(dataclasses.asdict(self.stretch))
        return {"recipe": recipe_hash(self.config), "global_step": self.global_step,
                "schedule_steps": self.config.train.schedule_steps or self.total_steps, "stretches": stretches}

    def autocast(self):
        """Mixed precision for forward passes (``train.amp``); losses are then taken in fp32."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def _train_one(self, batch: dict[str, Any], progress: tqdm) -> None:
        if "window" in batch:  # data.blur_on_device: the workers sent sharp windows, kernels and noise levels
            blur, sharp = synthesize_batch(batch, self.device, self.config.data.degradation.quantize)
        else:
            blur = batch["blur"].to(self.device, non_blocking=True)
            sharp = batch["sharp"].to(self.device, non_blocking=True)
        crop = crop_at(self.config.train.crop_schedule, self.run_progress())
        if crop is not None:
            blur, sharp = random_windows(blur, sharp, crop, seed=self.config.experiment.seed * 1_000_003 + self.step)
        blur = blur.contiguous(memory_format=self.memory_format)
        sharp = sharp.contiguous(memory_format=self.memory_format)
        logs = self.train_step(blur, sharp)
        if self.ema is not None:
            self.ema.update_parameters(self.generator)
        self.step += 1
        self.batch_in_epoch += 1
        self.running_loss += logs["loss"] if math.isfinite(logs["loss"]) else 0.0
        if self.step % self.config.log.scalar_every == 0:
            for key, value in logs.items():
                self.writer.add_scalar(f"train/{key}", value, self.global_step)
        progress.update(1)
        progress.set_postfix(loss=f"{logs['loss']:.4f}")
        if progress.disable and self.world.is_main and self.step % self.config.log.progress_every == 0:
            # No progress bar (output to a file or pipe): a plain line now and then shows the run is alive.
            elapsed = time.monotonic() - self.started
            rate = (self.step - self.start_step) / max(elapsed, 1e-9)
            lr = f"  lr {logs['lr']:.2e}" if "lr" in logs else ""
            where = f" (global {self.global_step})" if self.config.train.schedule_steps else ""  # a long run's stretch
            print(f"step {self.step}/{self.total_steps}{where}  loss {logs['loss']:.4f}{lr}  "
                  f"{1 / max(rate, 1e-9):.2f} s/step  elapsed {_clock(elapsed)}", flush=True)

    def run_progress(self) -> float:
        """How far this run is, 0 to 1: the share of its steps done or, with train.max_minutes, of its minutes
        when that is further (``train.crop_schedule`` follows it)."""
        progress = self.step / max(self.total_steps, 1)
        limit = self.config.train.max_minutes
        if limit:
            progress = max(progress, (time.monotonic() - self.started) / (60 * limit))
        return min(progress, 1.0)

    def _end_epoch(self, progress: tqdm, interactive: bool) -> None:
        config = self.config
        mean_loss = self.running_loss / self.steps_per_epoch
        self.epoch, self.batch_in_epoch, self.running_loss = self.epoch + 1, 0, 0.0
        scores = self.scores = self.validate()
        self.after_validation(scores)
        is_best = scores.psnr > self.best_psnr
        self.best_psnr = max(self.best_psnr, scores.psnr)
        self.save(best=is_best)
        elapsed = time.monotonic() - self.started
        remaining = elapsed / max(1, self.step - self.start_step) * (self.total_steps - self.step)
        message = (
            f"epoch {self.epoch}/{config.train.epochs}  loss {mean_loss:.4f}  "
            f"{self.epoch_summary(scores)}  elapsed {_clock(elapsed)}  ETA {_clock(remaining)}"
            f"{'  *best' if is_best else ''}"
        )
        if self.world.is_main:
            progress.write(message) if interactive else print(message, flush=True)


def ema_with_warmup(decay: float):
    """EMA update whose decay ramps up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates.

    A fixed decay (``get_ema_multi_avg_fn``) keeps 0.999^n of the initial weights: after 500 steps at 0.999 the
    average is still 61% the untrained network, and averaging weights that far apart gives a network worse than
    either (a validation PSNR far under the raw weights' and the blurred input's). The
    warm-up lets the average follow the weights early on and reaches ``decay`` after about 10 / (1 - decay) steps.
    """

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        updates = float(num_averaged)
        weight = 1.0 - min(decay, (1.0 + updates) / (10.0 + updates))
        # Only floating-point tensors are averaged; integer buffers (BatchNorm's num_batches_tracked) are copied.
        floats = [(a, c) for a, c in zip(averaged, current) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], weight)
        for a, c in zip(averaged, current):
            if not a.is_floating_point():
                a.copy_(c)

    return update


class NullWriter:
    """The SummaryWriter of ranks other than 0: they log nothing."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"
