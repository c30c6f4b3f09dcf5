"""Full-reference perceptual metrics that need no downloaded weights: ColorVideoVDP and FLIP.

LPIPS needs ImageNet backbones that air-gapped machines cannot fetch; these two ship everything they need in
their packages (optional extras: ``pip install -e ".[metrics]"``):

- **ColorVideoVDP** (``cvvdp``, Mantiuk et al. 2024): the visible difference predicted for a stated display, in
  JOD units (just-objectionable differences; 10 = identical, higher is better). Both images are 8-bit sRGB shown
  on its ``standard_fhd`` display model (24-inch 1920x1080 SDR monitor, 200 cd/m2, 250 lux office light, 0.6 m).
- **FLIP** (``flip-evaluator``, Andersson et al. 2020): the mean of NVIDIA's LDR-FLIP error map on 8-bit sRGB
  images at its default 67 pixels per degree (0 = identical, lower is better).

Each loader returns (score function or None, the reason it is unavailable), as ``load_lpips`` does, so a missing
package is reported in one line and never replaced by a made-up value.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Callable

import numpy as np

from core.registry import Registry

CVVDP_DISPLAY = "standard_fhd"
Score = Callable[[np.ndarray, np.ndarray], float]  # (restored, sharp), HxWx3 floats in [0, 1] -> one number


def _to_8bit(image: np.ndarray) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def load_flip() -> tuple[Score | None, str]:
    try:
        import flip_evaluator
    except ImportError:
        return None, "FLIP skipped: the flip-evaluator package is not installed (pip install flip-evaluator)"

    def score(restored: np.ndarray, sharp: np.ndarray) -> float:
        reference = _to_8bit(sharp).astype(np.float32) / 255.0
        test = _to_8bit(restored).astype(np.float32) / 255.0
        _, mean_error, _ = flip_evaluator.evaluate(reference, test, "LDR", applyMagma=False)
        return float(mean_error)

    return score, ""


def load_cvvdp(display: str = CVVDP_DISPLAY) -> tuple[Score | None, str]:
    try:
        from losses.torchvision_import import import_torchvision

        import_torchvision()  # cvvdp imports torchvision, whose PyPI build needs this next to a CPU-only torch
        with contextlib.redirect_stdout(io.StringIO()):
            import pycvvdp
    except ImportError:
        return None, "ColorVideoVDP skipped: the cvvdp package is not installed (pip install cvvdp)"
    import torch

    logging.getLogger("pycvvdp").setLevel(logging.WARNING)
    metric = pycvvdp.cvvdp(display_name=display, device=torch.device("cpu"), quiet=True)

    def score(restored: np.ndarray, sharp: np.ndarray) -> float:
        with torch.no_grad():
            jod, _ = metric.predict(_to_8bit(restored), _to_8bit(sharp), dim_order="HWC")
        return float(jod)

    return score, ""


LOADERS: Registry = Registry("metric", {"cvvdp": load_cvvdp, "flip": load_flip})
# What evaluate.py --metrics names (LPIPS stands for both of its backbones); the column cvvdp fills is its unit.
METRIC_CHOICES = ("psnr", "ssim", "lpips", "cvvdp", "flip")
COLUMN = {"cvvdp": "jod", "flip": "flip"}
