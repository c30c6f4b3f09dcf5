"""Training's side of checkpoints: the rolling set of step files, leftovers of a killed write, the weights a run
starts from (``train.init``) and the check that no broken weights are saved. Reading and writing the files
themselves is core.checkpoint's job."""

from __future__ import annotations

from pathlib import Path

import torch

from core.checkpoint import (
    first_non_finite_weight,
    generator_weights,
    load_checkpoint,
    network_options,
    step_checkpoints,
)

from .errors import ExperimentError


def prune_step_checkpoints(folder: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints (``best.pt`` is not one of them)."""
    for path in step_checkpoints(folder)[keep:]:
        path.unlink(missing_ok=True)

def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Temporary files a killed process left mid-write: never complete, never loaded, safe to delete."""
    stale = sorted(folder.glob(".*.pt.*.tmp")) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale

def load_init_weights(model: torch.nn.Module, path: str | Path, network: str) -> dict:
    """Load the generator weights of checkpoint or bundled file ``path`` into ``model`` (``train.init``); an
    ``ExperimentError`` naming the file when it is no generator of the configured network. Returns the file's
    state (its records: the long run's position among them)."""
    state = load_checkpoint(path)
    options = network_options(state, path)
    own = model.state_dict()
    try:
        weights = {name: tensor.to(own[name].dtype) if name in own else tensor
                   for name, tensor in generator_weights(state, path).items()}
        # Parts that start at zero (a module the file's network did not have) keep their initial values: the
        # network then computes what the file's did. Anything else missing is still an error.
        additions = getattr(model, "zero_init_additions", tuple)()
        kept = [name for name in own if name not in weights and name.startswith(additions)]
        model.load_state_dict({**weights, **{name: own[name] for name in kept}})
    except (RuntimeError, TypeError) as error:
        raise ExperimentError(
            f"train.init {path} is not a generator of the configured network {network!r} "
            f"(it holds {options['name']!r} {options}): {str(error).splitlines()[0]}"
        ) from None
    broken = first_non_finite_weight(model)
    if broken:
        raise ExperimentError(f"train.init {path}: weight {broken} is not finite (inf or nan)")
    return state

def first_non_finite(modules: list[torch.nn.Module]) -> str:
    """The name of the first parameter or buffer holding inf or nan ("" when all are finite): such weights are
    never saved, since every later load would restore the broken model."""
    for module in modules:
        broken = first_non_finite_weight(module)
        if broken:
            return broken
    return ""
