"""The one timing rule of every measurement here (bench/ and ``train.amp=auto``): a warm-up run, then the median of
``repeats`` timed runs."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def median_seconds(run: Callable[[], object], repeats: int, device: torch.device | None = None) -> float:
    """Median wall time of ``run()``; on CUDA synchronised before and after, so queued kernels are counted."""
    cuda = device is not None and device.type == "cuda"

    def once() -> float:
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    once()  # warm-up: allocator, oneDNN kernel selection, cuDNN autotuning, compilation, worker start
    return statistics.median(once() for _ in range(repeats))
