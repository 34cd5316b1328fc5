"""Finds every method in `attribution/methods/`: adding a method file is all it takes to enrol it.

Each public module `attribution/methods/<name>.py` must define `METHOD`, a `Method` named
`<name>`. Modules whose name starts with an underscore are private helpers and are skipped.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from collections.abc import Mapping
from typing import Any

from attribution import methods as _methods_pkg
from attribution.classifier import Classifier
from attribution.method import FAMILIES, AttributionFn, Method


@functools.cache
def _discover() -> dict[str, Method]:
    found = {}
    for info in pkgutil.iter_modules(_methods_pkg.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_methods_pkg.__name__}.{info.name}")
        method = getattr(module, "METHOD", None)
        if not isinstance(method, Method):
            raise TypeError(f"{module.__name__} must define METHOD, an attribution Method.")
        if method.name != info.name:
            raise TypeError(f"{module.__name__}.METHOD is named {method.name!r}; "
                            f"it must be named {info.name!r}, like its module.")
        _check_signature(method)
        if method.family not in FAMILIES:
            raise TypeError(f"{module.__name__}.METHOD has family {method.family!r}; valid "
                            f"families: {', '.join(FAMILIES)}.")
        found[info.name] = method
    return dict(sorted(found.items()))


def _check_signature(method: Method) -> None:
    """A method's options are the keyword-only parameters of `make`, all with defaults."""
    params = list(inspect.signature(method.make).parameters.values())
    positional = [p for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    missing = [p.name for p in params
               if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty]
    if len(positional) != 1 or missing:
        raise TypeError(f"{method.name}.make must be make(classifier, *, <options with defaults>); "
                        f"its signature is {inspect.signature(method.make)}.")


def names() -> list[str]:
    """Returns the names of all registered methods, sorted."""
    return list(_discover())


def get(name: str) -> Method:
    """Returns the method registered as `name`.

    Raises:
        ValueError: If no method has that name; the message lists the valid ones.
    """
    registered = _discover()
    if name not in registered:
        raise ValueError(f"Unknown attribution method {name!r}; "
                         f"valid methods: {', '.join(registered)}.")
    return registered[name]


def create(name: str, classifier: Classifier, options: Mapping[str, Any] | None = None
           ) -> AttributionFn:
    """Builds method `name` for `classifier` with `options` (validated; not jitted).

    Raises:
        ValueError: For an unknown method or option name, or an option value `make` rejects.
    """
    return get(name).build(classifier, **dict(options or {}))
