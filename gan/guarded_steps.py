"""The optimiser step of the training engine and its bad-step policy: a non-finite loss or gradient skips the step
(weights and optimiser untouched), ``train.max_bad_steps`` in a row stop the run; fp16 uses one gradient scaler per
optimiser."""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn

from .distributed import all_true, average_gradients
from .errors import TrainingDiverged


class GuardedSteps:
    """The Trainer's optimisation part (it reads ``config``, ``world``, ``device``, ``amp_dtype``, ``writer``,
    ``step`` and ``global_step``, and keeps ``bad_steps`` and ``grad_scalers``)."""

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
