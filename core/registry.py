"""One way to make a thing findable by name: networks, norms, upsamplers, critic norms, GAN objectives, detail
losses, offline metrics and evaluation methods are each a ``Registry``, filled where the things are defined."""

from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")


class Registry(dict):
    """A name -> thing mapping that says what kind of thing it holds. ``register(name)`` decorates a definition;
    ``lookup(name)`` names the choices when the name is unknown. A name registered twice is an error."""

    def __init__(self, kind: str, entries: dict | None = None):
        super().__init__()
        self.kind = kind
        for name, thing in (entries or {}).items():
            self.add(name, thing)

    def add(self, name: str, thing: T) -> T:
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self[name] = thing
        return thing

    def register(self, name: str) -> Callable[[T], T]:
        return lambda thing: self.add(name, thing)

    def lookup(self, name: str):
        if name not in self:
            raise ValueError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self)}")
        return self[name]
