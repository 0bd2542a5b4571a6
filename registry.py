"""A small name -> object registry, one instance per kind of part (tasks, losses, students, generators, arms).

One rule: a part that carries its name (a dataclass with ``name``) is registered with :meth:`Registry.add`, so the
name is written once; a function or class is registered with the ``@REGISTRY.register(name)`` decorator.

Modelled on torchdistill's registries: a new part is a decorated function or class plus a name in a config.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import DfkdError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to parts of one kind.

    Args:
        kind: what the registry holds, used in error messages (e.g. ``"loss"``).

    Raises:
        DfkdError: from :meth:`get` for an unknown name (the message lists the known names), and from
            :meth:`register` for a name that is already taken.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; without ``obj``, return a decorator that does it."""

        def add(item: T) -> T:
            if name in self._items:
                raise DfkdError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return add if obj is None else add(obj)

    def add(self, obj: T) -> T:
        """Register ``obj`` under its own ``name`` attribute: the one way a part that knows its name is
        registered, so the name is written once."""
        return self.register(obj.name, obj)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise DfkdError(f"unknown {self.kind} {name!r}; expected one of: {known}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def names(self) -> list[str]:
        return list(self._items)
