"""The generator a checkpoint was trained with, rebuilt from its recorded network options and loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from core.checkpoint import first_non_finite_weight, generator_weights, network_options
from core.errors import ExperimentError
from nets import build_network


def generator_from_checkpoint(state: dict[str, Any], path: str | Path = "checkpoint") -> torch.nn.Module:
    """Rebuild the generator a checkpoint was trained with and load its weights."""
    options = network_options(state, path)
    name = options.pop("name")
    try:
        model = build_network(name, **options)
        model.load_state_dict(generator_weights(state, path))
    except (ValueError, RuntimeError, TypeError) as error:
        reason = str(error).splitlines()[0]
        raise ExperimentError(f"checkpoint {path} does not match network {name!r}: {reason}") from None
    broken = first_non_finite_weight(model)
    if broken:
        raise ExperimentError(f"checkpoint {path}: weight {broken} is not finite (inf or nan); it would restore "
                              "every image to nan")
    return model
