"""One registry and one parameter mechanism for methods, metrics and models.

Everything a user picks by name — an attribution method, a metric, a model — lives in a
:class:`Registry`: registered by a decorator (or a call), looked up with a clear error
naming the known entries, listed in registration order. The families fill their
registries when their modules are imported, which a registry does on its first lookup.

Methods and metrics share :class:`Configurable`: their parameters are declared as
:class:`Param` class attributes, validated once on construction, and make up the cache
key and the ``repr`` (the pattern of zennit's rules and Quantus' metrics).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from .errors import ParameterError

__all__ = ["Configurable", "Param", "Registry", "UnknownName", "format_spec", "parse_spec"]

T = TypeVar("T")


@dataclass(frozen=True)
class Param:
    """A parameter: default, type, range and one line of help (drives CLI and UI)."""

    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None

    def validate(self, name: str, value: Any) -> Any:
        """``value`` converted to the default's type and checked against range and choices."""
        kind = type(self.default)
        try:
            if kind is bool:
                if not isinstance(value, bool):
                    value = str(value).lower() in ("1", "true", "yes")
            elif kind is tuple:
                # elements take the type of the default's (ints, or floats such as areas)
                elem = type(self.default[0]) if self.default else int
                if isinstance(value, str):
                    value = [v for v in value.replace(",", " ").split() if v]
                value = tuple(elem(v) for v in value)
            elif self.default is not None:
                value = kind(value)
        except (TypeError, ValueError) as exc:
            raise ParameterError(
                f"parameter {name!r} must be a {kind.__name__}, got {value!r}") from exc
        if self.choices is not None and value not in self.choices:
            raise ParameterError(
                f"parameter {name!r} must be one of {list(self.choices)}, got {value!r}")
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                if self.low is not None and v < self.low:
                    raise ParameterError(f"parameter {name!r} must be ≥ {self.low}, got {v}")
                if self.high is not None and v > self.high:
                    raise ParameterError(f"parameter {name!r} must be ≤ {self.high}, got {v}")
        return value


def _jsonable(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


class Configurable:
    """Base of everything with a ``name`` and validated :class:`Param` parameters.

    Subclasses set ``name``, ``kind`` (the word used in messages: "method", "metric")
    and ``params``; ``self.config`` holds the validated values.
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "component"
    params: ClassVar[dict[str, Param]] = {}

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(self.params)
        if unknown:
            raise ParameterError(
                f"{self.kind} {self.name!r} has no parameter(s) {sorted(unknown)}",
                hint=f"Its parameters are: {sorted(self.params) or 'none'}.",
            )
        self.config: dict[str, Any] = {
            k: p.validate(k, params.get(k, p.default)) for k, p in self.params.items()
        }

    def key(self) -> dict[str, Any]:
        """Everything the output depends on besides its inputs (cache and resume keys)."""
        return {self.kind: self.name,
                **{k: _jsonable(v) for k, v in sorted(self.config.items())}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"


class UnknownName(ParameterError, KeyError):
    """No entry of that name (a :class:`ParameterError` that is also a ``KeyError``)."""

    __str__ = Exception.__str__  # KeyError's would quote the message


class Registry(MutableMapping[str, T]):
    """Entries by name, filled by the modules that define them.

    Parameters
    ----------
    kind
        What the entries are ("method", "metric", "model"), for messages.
    modules
        Modules that register entries when imported, in order and on demand: a lookup
        imports them one by one until its name is registered, a listing imports all. Named
        rather than imported here so that a base module never imports its families (no
        import cycle), and because the families pull in heavy libraries (captum and
        zennit take seconds) that ``import xai_core`` should not pay for.

    A mapping: ``registry[name]`` raises :class:`UnknownName` naming the known entries,
    ``registry.get(name)`` returns ``None``; tests may add and remove entries.
    """

    def __init__(self, kind: str, modules: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._modules = modules
        self._imported = 0  # modules[:_imported] are imported
        self._origin: dict[str, int] = {}  # name → index of the module that registered it
        self._importing: int | None = None

    def _import_next(self) -> bool:
        """Import the next module not imported yet; ``False`` when all are."""
        if self._imported >= len(self._modules):
            return False
        self._importing = self._imported
        try:
            importlib.import_module(self._modules[self._imported])  # registers its entries
        finally:
            self._importing = None
        self._imported += 1
        return True

    def _ensure_loaded(self, name: object = None) -> None:
        """Import the modules, in order, until ``name`` is registered (all of them for
        anything but a name): a lookup pays only for the families up to its own, so asking for
        ``dtd`` does not import captum. A module that fails to import is retried next time."""
        while (not isinstance(name, str) or name not in self._entries) and self._import_next():
            pass

    def register(self, entry: T) -> T:
        """Register ``entry`` under its ``name`` attribute (usable as a class decorator); a
        later registration under the same name replaces an earlier one."""
        name = getattr(entry, "name", "")
        if not name:
            raise TypeError(f"a {self.kind} needs a name: {entry!r}")
        self._entries[name] = entry
        self._origin.setdefault(name, len(self._modules) if self._importing is None
                                else self._importing)
        return entry

    def __getitem__(self, name: str) -> T:
        self._ensure_loaded(name)
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownName(f"unknown {self.kind} {name!r}",
                              hint=f"Known {self.kind}s: {', '.join(sorted(self._entries))}."
                              ) from None

    def __setitem__(self, name: str, entry: T) -> None:
        self._entries[name] = entry

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded(name)
        try:
            return name in self._entries
        except TypeError:  # an unhashable name is no entry
            return False

    def __iter__(self) -> Iterator[str]:
        """All names, by module (in ``modules`` order) then in registration order, whatever
        order earlier lookups imported the modules in; entries added by hand come last."""
        self._ensure_loaded()
        last = len(self._modules)
        return iter(sorted(self._entries, key=lambda n: self._origin.get(n, last)))

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"


# --------------------------------------------------------------------------- NAME:key=value
def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"occlusion:window=4,28,28,stride=2,14,14"`` → ``("occlusion", {"window": "4,28,28",
    "stride": "2,14,14"})``.

    The one syntax for a named thing with parameters, on every command line and in the
    dashboard's settings: ``NAME`` or ``NAME:key=value,key=value``. A comma-separated
    part without ``=`` continues the previous value (tuples such as ``window=4,28,28``).
    Values stay strings; the method or metric validates and converts its own.
    """
    name, _, rest = spec.partition(":")
    name = name.strip()
    if not name:
        raise ParameterError(f"no name in {spec!r}.",
                             hint="Write NAME or NAME:key=value,key=value.")
    params: dict[str, str] = {}
    last: str | None = None
    for part in rest.split(",") if rest.strip() else []:
        key, eq, value = part.partition("=")
        if eq and key.strip():
            last = key.strip()
            params[last] = value.strip()
        elif not eq and last is not None and part.strip():
            params[last] += "," + part.strip()
        else:
            raise ParameterError(f"cannot read {part!r} in {spec!r}.",
                                 hint="Write NAME:key=value,key=value "
                                      "(for example integrated-gradients:steps=64).")
    return name, params


def format_spec(name: str, params: dict[str, Any]) -> str:
    """Inverse of :func:`parse_spec`: ``("ig", {"steps": 64})`` → ``"ig:steps=64"``."""
    if not params:
        return name
    parts = [f"{k}={','.join(map(str, v)) if isinstance(v, (tuple, list)) else v}"
             for k, v in params.items()]
    return f"{name}:{','.join(parts)}"
