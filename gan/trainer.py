"""The training engine: devices, data loading, optimisation, validation, checkpoints and TensorBoard logging.

``Trainer`` runs the epochs; a phase subclasses it and implements ``train_step``. The pretrain phase (Charbonnier
only, the "Charbonnier LightUNet baseline") is ``PretrainTrainer``.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from datasets import build_datasets
from losses import charbonnier
from nets import build_network

from .checkpoint import save_checkpoint
from .config import Config
from .device import pick_device
from .errors import ConfigError
from .experiment import Experiment
from .metrics import psnr_per_image, ssim_per_image


@dataclass
class Scores:
    psnr: float
    ssim: float


class Trainer:
    phase = "base"

    def __init__(self, config: Config, experiment: Experiment):
        self.config = config
        self.experiment = experiment
        torch.manual_seed(config.experiment.seed)
        if config.train.threads > 0:
            torch.set_num_threads(config.train.threads)
        self.device = pick_device(config.train.device)

        model_options = dict(config.model)
        try:
            self.generator = build_network(model_options.pop("name"), **model_options).to(self.device)
        except ValueError as error:
            raise ConfigError(f"model: {error}") from None

        self.train_set, self.val_set = build_datasets(config.data, seed=config.experiment.seed)
        self.train_loader = DataLoader(
            self.train_set,
            batch_size=config.train.batch_size,
            shuffle=False,  # every item is already a fresh random pair; see SyntheticBlurPairs
            num_workers=config.data.num_workers,
            pin_memory=self.device.type == "cuda",
            drop_last=True,
        )
        if len(self.train_loader) == 0:
            raise ConfigError(
                f"data.train_pairs_per_epoch ({len(self.train_set)}) is smaller than train.batch_size "
                f"({config.train.batch_size}): an epoch would have no step"
            )
        self.val_loader = DataLoader(self.val_set, batch_size=config.train.batch_size, shuffle=False)
        self.total_steps = config.train.epochs * len(self.train_loader)
        self.step = 0
        self.epoch = 0
        self.best_psnr = -math.inf
        self.scores: Scores | None = None
        self.writer = SummaryWriter(str(experiment.tensorboard))
        self.blurry_scores = self._score_blurry_inputs()

    # -- the loop -------------------------------------------------------------------------------------------

    def train_step(self, blur: torch.Tensor, sharp: torch.Tensor) -> dict[str, float]:
        raise NotImplementedError

    def fit(self) -> Scores:
        config = self.config
        interactive = sys.stderr.isatty()
        progress = tqdm(total=self.total_steps, initial=self.step, desc=self.phase, unit="step", disable=not interactive)
        start = time.monotonic()
        start_step = self.step
        for epoch in range(self.epoch, config.train.epochs):
            self.epoch = epoch
            self.train_set.set_epoch(epoch)
            self.generator.train()
            running = 0.0
            for batch in self.train_loader:
                blur = batch["blur"].to(self.device, non_blocking=True)
                sharp = batch["sharp"].to(self.device, non_blocking=True)
                logs = self.train_step(blur, sharp)
                self.step += 1
                running += logs["loss"]
                if self.step % config.log.scalar_every == 0:
                    for key, value in logs.items():
                        self.writer.add_scalar(f"train/{key}", value, self.step)
                progress.update(1)
                progress.set_postfix(loss=f"{logs['loss']:.4f}")
            self.epoch = epoch + 1
            scores = self.scores = self.validate()
            is_best = scores.psnr > self.best_psnr
            self.best_psnr = max(self.best_psnr, scores.psnr)
            self.save("last.pt")
            if is_best:
                self.save("best.pt")
            elapsed = time.monotonic() - start
            remaining = elapsed / max(1, self.step - start_step) * (self.total_steps - self.step)
            message = (
                f"epoch {self.epoch}/{config.train.epochs}  loss {running / len(self.train_loader):.4f}  "
                f"val PSNR {scores.psnr:.2f} dB (blurry {self.blurry_scores.psnr:.2f})  "
                f"SSIM {scores.ssim:.4f} (blurry {self.blurry_scores.ssim:.4f})  "
                f"elapsed {_clock(elapsed)}  ETA {_clock(remaining)}{'  *best' if is_best else ''}"
            )
            progress.write(message) if interactive else print(message, flush=True)
        progress.close()
        self.writer.close()
        return self.scores

    # -- validation -----------------------------------------------------------------------------------------

    def _score_blurry_inputs(self) -> Scores:
        """The baseline every restored score is printed next to: doing nothing at all."""
        psnrs, ssims = [], []
        for batch in self.val_loader:
            psnrs.append(psnr_per_image(batch["blur"], batch["sharp"]))
            ssims.append(ssim_per_image(batch["blur"], batch["sharp"]))
        return Scores(torch.cat(psnrs).mean().item(), torch.cat(ssims).mean().item())

    @torch.no_grad()
    def validate(self) -> Scores:
        self.generator.eval()
        psnrs, ssims, rows = [], [], []
        for batch in self.val_loader:
            blur, sharp = batch["blur"].to(self.device), batch["sharp"].to(self.device)
            restored = self.generator(blur).clamp(0.0, 1.0)
            psnrs.append(psnr_per_image(restored, sharp).cpu())
            ssims.append(ssim_per_image(restored, sharp).cpu())
            if sum(len(r) for r in rows) < self.config.log.val_images:
                rows.append(torch.cat([blur, restored, sharp], dim=-1).cpu())
        scores = Scores(torch.cat(psnrs).mean().item(), torch.cat(ssims).mean().item())
        self.writer.add_scalar("val/psnr", scores.psnr, self.step)
        self.writer.add_scalar("val/ssim", scores.ssim, self.step)
        self.writer.add_scalar("val/psnr_blurry_input", self.blurry_scores.psnr, self.step)
        self.writer.add_scalar("val/ssim_blurry_input", self.blurry_scores.ssim, self.step)
        if rows:
            # One row per validation pair: blurred | restored | sharp.
            grid = torch.cat(rows)[: self.config.log.val_images]
            self.writer.add_image("val/blurred_restored_sharp", torch.cat(list(grid), dim=-2), self.step)
        self.writer.flush()
        return scores

    # -- checkpoints ----------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "model": dict(self.config.model),
            "generator": self.generator.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "best_psnr": self.best_psnr,
            # Validation scores of exactly these weights, so a reloaded checkpoint can be checked against them.
            "metrics": {
                "val_psnr": self.scores.psnr if self.scores else None,
                "val_ssim": self.scores.ssim if self.scores else None,
                "blurry_psnr": self.blurry_scores.psnr,
                "blurry_ssim": self.blurry_scores.ssim,
            },
            "config": self.config.to_dict(),
        }

    def save(self, name: str) -> None:
        save_checkpoint(self.state(), self.experiment.checkpoints / name)


class PretrainTrainer(Trainer):
    """Phase 1: the generator alone, Charbonnier loss, AdamW with cosine annealing to ``train.lr_min``."""

    phase = "pretrain"

    def __init__(self, config: Config, experiment: Experiment):
        super().__init__(config, experiment)
        train = config.train
        self.optimizer = torch.optim.AdamW(self.generator.parameters(), lr=train.lr, weight_decay=train.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=self.total_steps, eta_min=train.lr_min
        )

    def train_step(self, blur: torch.Tensor, sharp: torch.Tensor) -> dict[str, float]:
        restored = self.generator(blur)
        loss = charbonnier(restored, sharp, self.config.train.charbonnier_eps)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.config.train.grad_clip or math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.generator.parameters(), clip)
        self.optimizer.step()
        lr = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        return {"loss": loss.item(), "lr": lr, "grad_norm": grad_norm.item()}

    def state(self) -> dict[str, Any]:
        return {**super().state(), "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"
