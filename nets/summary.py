"""Parameter and multiply-accumulate counts, measured by running the network once."""

from __future__ import annotations

import inspect

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, height: int, width: int, channels: int = 3) -> int:
    """Multiply-accumulates of one forward pass on a ``channels x height x width`` image (one per argument of
    ``forward``: the conditional critic takes the blurred condition and the image).

    torch's FlopCounterMode counts 2 FLOPs per MAC for convolutions and matmuls; norms and activations are not
    counted, as is usual in the GMACs papers quote.
    """
    device = next(model.parameters()).device
    images = [torch.zeros(1, channels, height, width, device=device)] * len(inspect.signature(model.forward).parameters)
    with FlopCounterMode(display=False) as counter:
        model(*images)
    return counter.get_total_flops() // 2
