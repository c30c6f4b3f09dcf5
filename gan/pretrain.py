"""Phase 1, ``train_gan.py --pretrain``: the generator alone with the Charbonnier loss (the "Charbonnier LightUNet
baseline"), AdamW, and the cosine schedule over a run or over the long run's global steps."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from losses import charbonnier, psnr_loss
from losses.detail import detail_terms

from .config import Config
from .experiment import Experiment
from .trainer import Trainer
from .validation import Scores


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
        train = self.config.train
        pixel = (psnr_loss(restored.float(), sharp) if train.pixel_loss == "psnr"
                 else charbonnier(restored.float(), sharp, train.charbonnier_eps))
        detail, detail_logs = detail_terms(restored, sharp, self.config.train.detail_losses)
        loss = pixel + detail
        grad_norm = self.optimise(loss, self.optimizer, self.generator.parameters())
        lr = self.optimizer.param_groups[0]["lr"]
        if train.schedule == "cosine":
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
