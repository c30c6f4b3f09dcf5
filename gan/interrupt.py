"""Graceful interruption: the first SIGINT/SIGTERM asks the run to stop after the current step (the engine then
saves a checkpoint and flushes TensorBoard); a second one exits at once."""

from __future__ import annotations

import os
import signal
import sys
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulInterrupt:
    """Context manager that turns the first signal into ``requested`` and the second into an immediate exit.

    Outside the main thread (where Python cannot install handlers) it does nothing and signals act as usual.
    """

    def __init__(self) -> None:
        self.requested: int | None = None  # the signal number once one arrived
        self._previous: dict[int, object] = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.requested).name if self.requested else ""

    def _handle(self, signum: int, frame) -> None:
        if self.requested is not None:
            # Checkpoints are written atomically, so even this cannot leave a half-written one behind.
            name = signal.Signals(signum).name
            print(f"\nsecond signal ({name}): exiting now without saving", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        self.requested = signum
        print(
            f"\n{signal.Signals(signum).name} received: finishing the current step and saving a checkpoint "
            "(send it again to exit at once)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> "GracefulInterrupt":
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


def ignore_interrupts_in_worker(_worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: Ctrl-C reaches the whole process group, but only the main process should
    act on it; the workers are shut down by the main process when it has saved."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
