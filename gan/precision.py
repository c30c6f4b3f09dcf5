"""Training precision: ``train.amp=auto`` picks bf16 autocast only where it is native and measured faster.

On a CPU, bf16 matrix units exist only with AVX512-BF16 or AMX (read from the CPU flags at run time, never
assumed); elsewhere bf16 is emulated and slower than fp32. Even where it is native, the choice is made by timing a
few forward and backward passes of the generator in both precisions at the training batch shape, because oneDNN's
bf16 kernels do not win for every layer shape or thread count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from core.cpu_features import native_bf16_flags

from .timing import median_seconds

# bf16 must be at least this much faster to be chosen: a tie is not worth bf16's rounding.
MIN_SPEEDUP = 1.1


@dataclass
class PrecisionChoice:
    dtype: torch.dtype | None  # None: fp32
    reason: str

    @property
    def name(self) -> str:
        return {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]


def _step_seconds(model: torch.nn.Module, sample: torch.Tensor, dtype: torch.dtype | None, repeats: int) -> float:
    def step() -> None:
        with torch.autocast(sample.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            out = model(sample)
        out.float().square().mean().backward()

    return median_seconds(step, repeats, sample.device)  # its warm-up lets oneDNN build kernels for this shape


def choose_cpu_precision(
    model: torch.nn.Module, sample: torch.Tensor, flags: set[str] | None = None, repeats: int = 2
) -> PrecisionChoice:
    """bf16 if the CPU has native bf16 and a measured training step is at least MIN_SPEEDUP faster, else fp32.

    The gradients the timing leaves are cleared; the weights are not changed (no optimiser step)."""
    native = native_bf16_flags(flags)
    if not native:
        return PrecisionChoice(None, "fp32: this CPU has no native bf16 (no avx512_bf16 or amx_bf16 flag)")
    was_training = model.training
    model.train()
    try:
        fp32 = _step_seconds(model, sample, None, repeats)
        bf16 = _step_seconds(model, sample, torch.bfloat16, repeats)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    measured = f"a step of batch {sample.shape[0]} at {sample.shape[-1]} px took {fp32:.2f} s fp32, {bf16:.2f} s bf16"
    if fp32 / bf16 >= MIN_SPEEDUP:
        return PrecisionChoice(torch.bfloat16, f"bf16 ({', '.join(native)}): {measured}")
    return PrecisionChoice(None, f"fp32 (bf16 not {MIN_SPEEDUP}x faster here): {measured}")


def choose_precision(
    amp: str, device: torch.device, model: torch.nn.Module, sample: Callable[[], torch.Tensor]
) -> PrecisionChoice:
    """``train.amp`` resolved for ``device``: off, bf16 and fp16 as asked; auto by the rules above (on CUDA,
    bf16 where the GPU supports it). ``sample()`` makes the timing batch, only where one is timed (auto on a CPU)."""
    if amp != "auto":
        return PrecisionChoice({"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp],
                               f"{amp}: as configured")
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return PrecisionChoice(torch.bfloat16, "bf16: this GPU supports it")
        return PrecisionChoice(None, "fp32: this GPU has no bf16")
    if device.type == "cpu":
        return choose_cpu_precision(model, sample())
    return PrecisionChoice(None, f"fp32: no bf16 rule for {device.type}")
