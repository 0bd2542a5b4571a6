"""One strict loader for every dict that configures dfkd (presets, ``--config`` files, student specs, stage
schedules, arm and adversarial settings).

Each kind of dict is a dataclass; :func:`from_dict` checks a dict against it before anything runs, so a
misspelt key or a wrong type stops the job with one line instead of being dropped silently (a dropped
``max_step`` would train three epochs instead of five steps). The same check covers the keyword settings
of registered functions (generators, student builders) through :func:`check_keywords`.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from .errors import DfkdError

T = TypeVar("T")


def suggest(key: str, allowed: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest allowed key, or ``""`` when none is close."""
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_assignment(pair: str, example: str) -> tuple[str, Any]:
    """One ``--set key=value``: the key, and the value read as JSON when it parses (numbers, lists, objects,
    true/null), else the string itself.

    Raises:
        DfkdError: no ``=`` or no key; the message shows ``example`` (e.g. ``"num_aug=8"``).
    """
    key, eq, raw = pair.partition("=")
    if not eq or not key:
        raise DfkdError(f"--set {pair!r}: expected key=value, e.g. --set {example}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def check_keys(data: dict, allowed: Iterable[str], where: str) -> None:
    """Raise one :class:`DfkdError` line for the first key of ``data`` not in ``allowed``.

    Args:
        where: what the dict configures, for the message (``"preset configs/x.json: training"``).
    """
    if not isinstance(data, dict):
        raise DfkdError(f"{where}: expected a JSON object of settings, got {type(data).__name__}")
    allowed = list(allowed)
    for key in data:
        if key not in allowed:
            raise DfkdError(f"{where}: unknown key {key!r}{suggest(key, allowed)}; expected one of: "
                            f"{', '.join(sorted(set(allowed)))}")


def _type_name(hint) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def matches(value: Any, hint) -> bool:
    """Whether a JSON-loaded ``value`` fits the type annotation ``hint`` (int fits float; lists fit tuples)."""
    if hint is Any or hint is object:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (bool, str):
        return isinstance(value, hint)
    if origin in (list, tuple, Iterable, typing.Sequence) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return len(args) != 1 or all(matches(v, args[0]) for v in value)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            return False
        args = typing.get_args(hint)
        return not args or all(matches(v, args[1]) for v in value.values())
    if dataclasses.is_dataclass(hint):
        return isinstance(value, (dict, hint))
    return True  # an annotation this checker does not model (callables, tensors): not checked


def from_dict(cls: type[T], data: dict | None, where: str) -> T:
    """Build the dataclass ``cls`` from ``data``, checking every key and value type first.

    Nested dataclass fields are read recursively (their ``where`` is ``"<where>.<field>"``).

    Raises:
        DfkdError: an unknown key (naming it, where it was, the allowed keys and a close match), a value of
            the wrong type, or a value the dataclass itself rejects (``__post_init__``).
    """
    data = {} if data is None else data
    if isinstance(data, cls):
        return data
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    check_keys(data, fields, where)
    hints = typing.get_type_hints(cls)
    values = {}
    for key, value in data.items():
        hint = hints.get(key, Any)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value, f"{where}.{key}")
        elif not matches(value, hint):
            raise DfkdError(f"{where}: {key} must be {_type_name(hint)}, got {json.dumps(value, default=str)}")
        values[key] = value
    try:
        return cls(**values)
    except TypeError as err:  # a required field left out
        raise DfkdError(f"{where}: {err}") from None


def read_json(path: str | Path, what: str = "config file", expect: type = dict):
    """The JSON value in ``path``, which must be an ``expect`` (an object by default; ``list`` for a schedule).

    Raises:
        DfkdError: a missing file, invalid JSON, or JSON of another kind.
    """
    p = Path(path)
    if not p.is_file():
        raise DfkdError(f"missing {what} {p}; expected a JSON file")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as err:
        raise DfkdError(f"{p} is not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(data, expect):
        kind = "object" if expect is dict else getattr(expect, "__name__", "value")
        raise DfkdError(f"{p}: expected a JSON {kind} ({what}), got {type(data).__name__}")
    return data


def keyword_names(fn: Callable, skip: Iterable[str] = ()) -> list[str] | None:
    """The keyword settings ``fn`` takes (``None`` when it takes ``**kwargs``, i.e. any)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return [n for n, p in params.items() if n not in set(skip)
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def keyword_defaults(fn: Callable, skip: Iterable[str] = ()) -> dict:
    """The default value of each keyword setting of ``fn`` that has one (minus ``skip``)."""
    skip = set(skip)
    return {n: p.default for n, p in inspect.signature(fn).parameters.items()
            if n not in skip and p.default is not p.empty}


def check_keywords(fn: Callable, settings: dict, where: str, skip: Iterable[str] = ()) -> None:
    """Check ``settings`` against ``fn``'s keyword parameters (minus ``skip``) and their annotations.

    Raises:
        DfkdError: an unknown setting or a value of the wrong type, as :func:`from_dict` does.
    """
    allowed = keyword_names(fn, skip)
    if allowed is not None:
        check_keys(settings, allowed, where)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # annotations naming types that are not importable here
        hints = {}
    for key, value in settings.items():
        if key in hints and not matches(value, hints[key]):
            raise DfkdError(f"{where}: {key} must be {_type_name(hints[key])}, got {json.dumps(value, default=str)}")
