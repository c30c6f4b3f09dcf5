"""Build networks by name, so configs say ``name: light_unet`` and adding a model is adding a file."""

from __future__ import annotations

import inspect
from typing import Callable

from torch import nn

from core.registry import Registry

NETWORKS: Registry = Registry("network")


def register(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    return NETWORKS.register(name)


def network_names() -> list[str]:
    return sorted(NETWORKS)


def network_options(name: str) -> dict[str, object]:
    """The keyword arguments a network accepts, with their defaults."""
    cls = _lookup(name)
    return {
        key: parameter.default
        for key, parameter in inspect.signature(cls.__init__).parameters.items()
        if key != "self" and parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    }


def build_network(name: str, **kwargs: object) -> nn.Module:
    """Instantiate a registered network; unknown options are an error, not silently ignored."""
    options = network_options(name)
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise ValueError(f"network {name!r} has no option {unknown[0]!r}; it takes: {', '.join(options)}")
    return _lookup(name)(**kwargs)


def _lookup(name: str) -> type[nn.Module]:
    return NETWORKS.lookup(name)
