"""How a run stops before its last epoch, always with a checkpoint saved: on a signal (SIGINT, SIGTERM; a second
one exits at once) or at ``train.max_minutes``, the planned end of a stretch."""

from __future__ import annotations

import signal
import time

from core.checkpoint import step_checkpoint_name

from .distributed import any_true
from .errors import Interrupted
from .interrupt import GracefulInterrupt


class Stopping:
    """The Trainer's stopping part (it reads ``config``, ``world``, ``device``, ``started``, ``experiment``,
    ``writer`` and the position, and calls ``save``)."""

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
