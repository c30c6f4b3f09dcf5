"""What a training checkpoint holds and how a run returns to it: weights (and the EMA), the position in the run,
every random generator, the fp16 scalers, the validation scores of exactly those weights, the config, the precision
and the long run's record; saving checks that torchrun replicas agree and that every weight is finite."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from torch import nn

from core.checkpoint import save_checkpoint, step_checkpoint_name, step_checkpoints
from core.errors import ConfigError, ExperimentError

from .checkpoint import first_non_finite, prune_step_checkpoints
from .distributed import replica_checksums
from .errors import TrainingDiverged
from .long_run import previous_stretches
from .rng import capture_rng_state, restore_rng_state
from .validation import Scores


class TrainerState:
    """The Trainer's checkpoint part. Phases extend ``state`` and ``restore`` with their optimisers, schedulers
    and extra networks, and ``replicated_modules`` with what torchrun ranks must hold identically."""

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
