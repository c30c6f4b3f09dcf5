"""What evaluate.py scores: one ``Method`` per row, built by name from its registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

# (blurred H x W x 3 float image, the true kernel or None) -> the restored image
Restore = Callable[[np.ndarray, "np.ndarray | None"], np.ndarray]


@dataclass(frozen=True)
class Method:
    label: str  # the row's name in tables and the run folder's default name
    restore: Restore | None  # None: the images were restored elsewhere (evaluate.py --restored)
    needs_kernel: bool = False  # a non-blind oracle, handed each benchmark image's true kernel
    device: str = "cpu"
    weights: dict | None = None  # the model file scored ({"path", "sha256"}): model cards accept only its scores
