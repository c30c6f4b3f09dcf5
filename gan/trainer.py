"""The training engine: devices, data loading, optimisation guards, validation, checkpoints and TensorBoard.

``Trainer`` runs the epochs; a phase subclasses it and implements ``train_step``. The pretrain phase (Charbonnier
only, the "Charbonnier LightUNet baseline") is ``PretrainTrainer``; the adversarial phase is in ``adversarial.py``.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from core.checkpoint import save_checkpoint, step_checkpoint_name, step_checkpoints
from core.cpu_allocator import reuse_freed_memory
from core.device import pick_device
from core.images import tensor_to_array
from datasets import EpochSampler, build_datasets
from datasets.synthetic import synthesize_batch
from evaluation.metrics import load_lpips, mean_psnr, psnr_per_image, ssim_per_image
from evaluation.offline_metrics import COLUMN, LOADERS
from losses import charbonnier
from losses.detail import detail_terms
from nets import build_network

from .checkpoint import first_non_finite, load_init_weights, prune_step_checkpoints, remove_stale_temporaries
from .config import Config
from .distributed import all_true, any_true, average_gradients, init_distributed, replica_checksums
from .errors import ConfigError, ExperimentError, Interrupted, TrainingDiverged
from .experiment import Experiment
from .interrupt import GracefulInterrupt, ignore_interrupts_in_worker
from .long_run import Stretch, device_name, previous_stretches, recipe_hash
from .precision import choose_precision
from .rng import capture_rng_state, restore_rng_state


@dataclass
class Scores:
    psnr: float
    ssim: float
    lpips: float | None = None
    perceptual: float | None = None  # log.perceptual's metric (JOD or FLIP), where asked for

    def describe(self, perceptual: str = "") -> str:
        text = f"PSNR {self.psnr:.2f} dB  SSIM {self.ssim:.4f}"
        text += f"  LPIPS {self.lpips:.4f}" if self.lpips is not None else ""
        return text + (f"  {perceptual} {self.perceptual:.4f}" if self.perceptual is not None else "")


class Trainer:
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
        config = self.config
        datasets = build_datasets(config.data, seed=config.experiment.seed)
        self.train_set, self.val_set, self.data_split = datasets.train, datasets.val, datasets.split
        # Items are pure functions of (seed, epoch, index); the sampler hands out those keys (and can start
        # mid-epoch on resume). The loader's own generator keeps its seed draws off the global torch RNG, which
        # a resumed run restores exactly.
        self.sampler = EpochSampler(len(self.train_set), self.world.rank, self.world.world_size)
        self.train_loader = DataLoader(
            self.train_set,
            batch_size=config.train.batch_size,
            sampler=self.sampler,
            num_workers=config.data.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=config.data.num_workers > 0,
            drop_last=True,
            generator=torch.Generator().manual_seed(config.experiment.seed),
            worker_init_fn=ignore_interrupts_in_worker,
        )
        self.steps_per_epoch = len(self.train_loader)
        if self.steps_per_epoch == 0:
            processes = f" x {self.world.world_size} processes" if self.world.enabled else ""
            raise ConfigError(
                f"data.train_pairs_per_epoch ({len(self.train_set)}) is smaller than train.batch_size "
                f"({config.train.batch_size}){processes}: an epoch would have no step"
            )
        whole_images = not config.data.synthetic and config.data.val_crop_size == 0
        self.val_loader = DataLoader(
            self.val_set,
            batch_size=1 if whole_images else config.train.batch_size,  # whole images differ in size
            shuffle=False,
            num_workers=config.data.num_workers,
            pin_memory=self.device.type == "cuda",
            # Its own generator: validating (and scoring the references in fit()) never moves the global RNG
            # stream that a resumed run restores.
            generator=torch.Generator().manual_seed(config.experiment.seed),
        )
        self.total_steps = config.train.epochs * self.steps_per_epoch

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

    def _set_up_validation_metrics(self) -> None:
        """LPIPS where its weights are there, and log.perceptual's scorer."""
        config = self.config
        self.lpips, self.lpips_unavailable = load_lpips(device=self.device) if config.log.lpips else (None, "")
        self.val_metric = None  # log.perceptual's scorer (the adversarial phase's self.perceptual is its loss)
        if config.log.perceptual != "none":
            self.val_metric, reason = LOADERS[config.log.perceptual]()
            if self.val_metric is None:
                raise ConfigError(f"log.perceptual={config.log.perceptual}: {reason}")
        self.perceptual_name = COLUMN.get(config.log.perceptual, "").upper()

    def score_references(self) -> None:
        """Scores of what the restored images are compared with on the validation pairs: the blurred input.
        fit() calls it once before the first step; phases add their own references."""
        self.blurry_scores, _ = self._score(lambda blur: blur)

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
                                     config.data.crop_size)
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
            blur, sharp = synthesize_batch(batch, self.device, self.config.data.quantize)
        else:
            blur = batch["blur"].to(self.device, non_blocking=True)
            sharp = batch["sharp"].to(self.device, non_blocking=True)
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

    def _out_of_time(self) -> bool:
        """``train.max_minutes`` of training have passed (every rank stops together)."""
        limit = self.config.train.max_minutes
        return bool(limit) and any_true(time.monotonic() - self.started >= 60 * limit, self.world, self.device)

    def _stop_in_time(self, saved: bool = False) -> None:
        """The planned end of a stretch: a checkpoint saved, then exit 0 with the line that continues it."""
        path = self.experiment.checkpoints / step_checkpoint_name(self.step)
        if not saved:
            self.save()
        self.writer.flush()
        raise Interrupted(f"stopped after train.max_minutes={self.config.train.max_minutes:g} at step "
                          f"{self.step}/{self.total_steps} (global step {self.global_step}); saved {path}", exit_code=0)

    def _stop(self, interrupt: GracefulInterrupt, saved: bool = False) -> None:
        path = self.experiment.checkpoints / step_checkpoint_name(self.step)
        if not saved:
            self.save()
        self.writer.flush()
        raise Interrupted(
            f"stopped by {interrupt.name or 'a signal to another rank'} at step {self.step}/{self.total_steps} "
            f"(epoch {self.epoch + 1}, {self.batch_in_epoch}/{self.steps_per_epoch} steps in); saved {path}",
            exit_code=128 + (interrupt.requested or signal.SIGTERM),  # a rank stopped by another's signal
        )

    def optimise(
        self,
        loss: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        parameters: Iterable[nn.Parameter],
        average: bool = False,
    ) -> float:
        """Backward and step, unless the loss or the gradients are not finite: then the step is skipped.

        ``average``: all-reduce these gradients to their mean over the torchrun ranks after the backward pass (for
        modules DDP does not wrap; see ``gan.distributed``). Every rank decides to skip together.

        Returns the gradient norm (nan when skipped). ``train.max_bad_steps`` skipped steps in a row stop the run
        with ``TrainingDiverged``; a skipped step leaves the weights and optimiser untouched, so every checkpoint
        on disk, even one written between skipped steps, holds good weights.
        """
        parameters = list(parameters)
        optimizer.zero_grad(set_to_none=True)
        scaler = self._grad_scaler(optimizer)
        if all_true(bool(torch.isfinite(loss)), self.world, self.device):
            (scaler.scale(loss) if scaler else loss).backward()
            if average:
                average_gradients(parameters, self.world)
            if scaler:
                scaler.unscale_(optimizer)
            clip = self.config.train.grad_clip or math.inf
            grad_norm = torch.nn.utils.clip_grad_norm_(parameters, clip).item()
            if scaler:
                # An fp16 overflow is routine, not divergence: the scaler skips this step and lowers its scale.
                scaler.step(optimizer)
                scaler.update()
                self.bad_steps = 0
                return grad_norm
            if math.isfinite(grad_norm):
                optimizer.step()
                self.bad_steps = 0
                return grad_norm
            optimizer.zero_grad(set_to_none=True)
        self.bad_steps += 1
        self.writer.add_scalar("train/skipped_step", 1.0, self.global_step)
        if self.bad_steps >= self.config.train.max_bad_steps:
            raise TrainingDiverged(
                f"training diverged: {self.bad_steps} steps in a row with a non-finite loss or gradient at step "
                f"{self.step}; the last good checkpoint is {self.newest_checkpoint()}"
            )
        return math.nan

    def _grad_scaler(self, optimizer: torch.optim.Optimizer) -> torch.amp.GradScaler | None:
        if self.amp_dtype is not torch.float16:
            return None
        if id(optimizer) not in self.grad_scalers:
            scaler = torch.amp.GradScaler("cuda")
            if len(self.grad_scalers) < len(self._saved_scalers):
                scaler.load_state_dict(self._saved_scalers[len(self.grad_scalers)])
            self.grad_scalers[id(optimizer)] = scaler
        return self.grad_scalers[id(optimizer)]

    # -- validation -----------------------------------------------------------------------------------------

    @torch.no_grad()
    def _score(self, restore, keep_rows: int = 0) -> tuple[Scores, list[torch.Tensor]]:
        """Scores of ``restore`` on the validation set, and the first ``keep_rows`` pairs as blurred | restored |
        sharp rows (kept from the same pass, so logging images costs no second forward)."""
        psnrs, ssims, lpipses, perceptual, rows = [], [], [], [], []
        for batch in self.val_loader:
            blur, sharp = batch["blur"].to(self.device), batch["sharp"].to(self.device)
            restored = restore(blur).clamp(0.0, 1.0)
            psnrs.append(psnr_per_image(restored, sharp).cpu())
            ssims.append(ssim_per_image(restored, sharp).cpu())
            if self.lpips is not None:
                lpipses.append(self.lpips(restored, sharp).cpu())
            if self.val_metric is not None:
                for one, target in zip(restored.float().cpu(), sharp.float().cpu()):
                    perceptual.append(self.val_metric(tensor_to_array(one), tensor_to_array(target)))
            if len(rows) < keep_rows:
                rows += list(torch.cat([blur, restored, sharp], dim=-1).cpu())[: keep_rows - len(rows)]
        lpips = torch.cat(lpipses).mean().item() if lpipses else None
        mean_perceptual = sum(perceptual) / len(perceptual) if perceptual else None
        return Scores(mean_psnr(torch.cat(psnrs)), torch.cat(ssims).mean().item(), lpips, mean_perceptual), rows

    @torch.no_grad()
    def validate(self) -> Scores:
        generator = self.eval_generator.eval()
        scores, rows = self._score(generator, keep_rows=self.config.log.val_images)
        perceptual = self.perceptual_name.lower() or "perceptual"
        for name, field in (("psnr", "psnr"), ("ssim", "ssim"), ("lpips", "lpips"), (perceptual, "perceptual")):
            value = getattr(scores, field)
            if value is not None:
                self.writer.add_scalar(f"val/{name}", value, self.global_step)
                self.writer.add_scalar(f"val/{name}_blurry_input", getattr(self.blurry_scores, field),
                                       self.global_step)
        if rows and all(row.shape == rows[0].shape for row in rows):  # one row per pair: blurred | restored | sharp
            self.writer.add_image("val/blurred_restored_sharp", torch.cat(rows, dim=-2), self.global_step)
        else:  # whole validation images of different sizes: one image each
            for index, row in enumerate(rows):
                self.writer.add_image(f"val/blurred_restored_sharp/{index}", row, self.global_step)
        self.writer.flush()
        return scores

    # -- checkpoints ----------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "model": dict(self.config.model),
            "generator": self.generator.state_dict(),
            **self._ema_state(),
            # The position: steps done, the epoch in progress and how far into it, and everything a resumed
            # run needs to continue exactly as this one would have.
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "running_loss": self.running_loss,
            "best_psnr": self.best_psnr,
            "bad_steps": self.bad_steps,
            "scores": dataclasses.asdict(self.scores) if self.scores else None,
            "rng": capture_rng_state(),
            "grad_scalers": [scaler.state_dict() for scaler in self.grad_scalers.values()],
            # Validation scores of exactly these weights, so a reloaded checkpoint can be checked against them.
            "metrics": {
                "val_psnr": self.scores.psnr if self.scores else None,
                "val_ssim": self.scores.ssim if self.scores else None,
                "val_lpips": self.scores.lpips if self.scores else None,
                "blurry_psnr": self.blurry_scores.psnr,
                "blurry_ssim": self.blurry_scores.ssim,
            },
            "config": self.config.to_dict(),
            "precision": {"amp": self.precision.name, "reason": self.precision.reason},
            "long_run": self.long_run_record(),
        }

    def _ema_state(self) -> dict[str, Any]:
        if self.ema is None:
            return {}
        return {"generator_ema": self.ema.module.state_dict(), "ema_updates": int(self.ema.n_averaged.item())}

    def save(self, best: bool = False) -> None:
        """The rolling ``step-NNNNNNNN.pt`` (the newest ``train.keep_last`` are kept), and ``best.pt`` too."""
        # Collective: every rank hashes its weights, so a replica that drifted from the others stops the run here.
        replicas = replica_checksums(self.replicated_modules(), self.world)
        if len(set(replicas)) > 1:
            raise TrainingDiverged(f"the {len(replicas)} torchrun replicas no longer hold the same weights at step "
                                   f"{self.step} (checksums {', '.join(replicas)})")
        broken = first_non_finite(self.replicated_modules() + ([self.ema] if self.ema is not None else []))
        if broken:
            raise TrainingDiverged(f"the weights are not finite at step {self.step} ({broken}), so no checkpoint is "
                                   f"saved; the newest good one is {self.newest_checkpoint()}")
        if not self.world.is_main:
            return
        folder = self.experiment.checkpoints
        copies = [folder / "best.pt"] if best else []
        try:
            state = {**self.state(), "world_size": self.world.world_size, "replica_checksums": replicas}
            save_checkpoint(state, folder / step_checkpoint_name(self.step), *copies)
        except ExperimentError as error:  # a full disk, say: stop here, say where to pick up
            raise ExperimentError(f"{error}; the newest complete one is {self.newest_checkpoint()}") from None
        prune_step_checkpoints(folder, self.config.train.keep_last)

    def replicated_modules(self) -> list[nn.Module]:
        """What every torchrun rank must hold identically (checked at every checkpoint)."""
        return [self.generator]

    def newest_checkpoint(self) -> Path | str:
        found = step_checkpoints(self.experiment.checkpoints)
        return found[0] if found else "(none yet)"

    def restore(self, state: dict[str, Any], path: Path) -> None:
        """Continue from a checkpoint of this phase (see ``gan.resume``): weights, position, random generators.
        Phases extend it with their optimisers and schedulers."""
        saved_world = state.get("world_size", 1)
        if saved_world != self.world.world_size:
            raise ConfigError(
                f"checkpoint {path} was trained by {saved_world} process(es), this run has {self.world.world_size}: "
                "a resumed run needs the same number (each one's share of an epoch depends on it)"
            )
        self.generator.load_state_dict(state["generator"])
        if self.ema is not None:
            if "generator_ema" not in state:
                raise ConfigError(f"train.ema_decay is set but checkpoint {path} was trained without an EMA")
            self.ema.module.load_state_dict(state["generator_ema"])
            self.ema.n_averaged.fill_(state["ema_updates"])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.running_loss, self.best_psnr = state["running_loss"], state["best_psnr"]
        self.bad_steps = state["bad_steps"]
        self.scores = Scores(**state["scores"]) if state["scores"] else None
        self.stretches = previous_stretches(state)  # this resumed session is a stretch of its own
        self._saved_scalers = state.get("grad_scalers", [])  # loaded by _grad_scaler as optimisers appear
        restore_rng_state(state["rng"])
        self.resumed_from = path


class PretrainTrainer(Trainer):
    """Phase 1: the generator alone, Charbonnier loss, AdamW with cosine annealing to ``train.lr_min`` (or, with
    ``train.schedule=plateau``, the rate multiplied by ``plateau_factor`` after ``plateau_patience`` epochs without a
    better validation PSNR)."""

    phase = "pretrain"

    def __init__(self, config: Config, experiment: Experiment):
        super().__init__(config, experiment)
        train = config.train
        self.optimizer = torch.optim.AdamW(self.generator.parameters(), lr=train.lr, weight_decay=train.weight_decay,
                                           betas=tuple(train.betas))
        if train.schedule == "plateau":  # the seed report's schedule: halve the rate when validation PSNR stalls
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, mode="max", factor=train.plateau_factor, patience=train.plateau_patience,
                min_lr=train.lr_min,
            )
        else:
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer, cosine_with_warmup(train, self.total_steps)
            )

    def train_step(self, blur: torch.Tensor, sharp: torch.Tensor) -> dict[str, float]:
        with self.autocast():
            restored = self.training_generator(blur)
        pixel = charbonnier(restored.float(), sharp, self.config.train.charbonnier_eps)
        detail, detail_logs = detail_terms(restored, sharp, self.config.train.detail_losses)
        loss = pixel + detail
        grad_norm = self.optimise(loss, self.optimizer, self.generator.parameters())
        lr = self.optimizer.param_groups[0]["lr"]
        if self.config.train.schedule == "cosine":
            self.scheduler.step()
        return {"loss": loss.item(), "lr": lr, "grad_norm": grad_norm, **detail_logs}

    def after_validation(self, scores: Scores) -> None:
        if self.config.train.schedule == "plateau":
            self.scheduler.step(scores.psnr)

    def state(self) -> dict[str, Any]:
        return {**super().state(), "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def restore(self, state: dict[str, Any], path: Path) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        scheduler = state["scheduler"]
        if self.config.train.schedule == "cosine" and "lr_lambdas" not in scheduler:
            # Written by CosineAnnealingLR: the same curve, closed-form here; its step count is what carries over.
            scheduler = {"last_epoch": scheduler["last_epoch"], "base_lrs": scheduler["base_lrs"],
                         "_last_lr": scheduler["_last_lr"], "lr_lambdas": [None]}
        self.scheduler.load_state_dict(scheduler)
        super().restore(state, path)  # last: the random generators are restored after everything else


def cosine_with_warmup(train, run_steps: int):
    """The rate's multiplier after ``step`` steps of this run: a cosine from ``train.lr`` to ``train.lr_min`` over
    ``train.schedule_steps`` global steps (this run's ``run_steps`` when 0), entered at ``train.start_step``, times
    a linear warm-up over this run's first ``train.warmup_steps`` steps."""
    length = train.schedule_steps or run_steps
    floor = train.lr_min / train.lr

    def multiplier(step: int) -> float:
        progress = min(train.start_step + step, length) / max(length, 1)
        cosine = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
        warmup = min(1.0, (step + 1) / train.warmup_steps) if train.warmup_steps else 1.0
        return cosine * warmup

    return multiplier


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
