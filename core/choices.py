"""Checking a dataclass's closed-set keys: a key typed ``Literal[...]`` may hold only one of its choices."""

from __future__ import annotations

import typing
from typing import Any, Callable, Literal


def choice_problems(section: Any, name: Callable[[str], str]) -> list[str]:
    """One problem for each Literal-typed key of dataclass ``section`` whose value is not one of its choices;
    ``name(key)`` is how the message names the key (``train.amp``, ``--noise-space``)."""
    problems = []
    for key, hint in typing.get_type_hints(type(section)).items():
        if typing.get_origin(hint) is Literal and getattr(section, key) not in typing.get_args(hint):
            problems.append(f"{name(key)} must be one of {', '.join(map(str, typing.get_args(hint)))}, "
                            f"got {getattr(section, key)!r}")
    return problems
