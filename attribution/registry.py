"""Finds every method in `attribution/methods/`: adding a method file is all it takes to enrol it.

Each public module `attribution/methods/<name>.py` must define `METHOD`, a `Method` named
`<name>`. Modules whose name starts with an underscore are private helpers and are skipped.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

from attribution import methods as _methods_pkg
from attribution._discovery import discover
from attribution.classifier import Classifier
from attribution.method import FAMILIES, AttributionFn, Method


@functools.cache
def _discover() -> dict[str, Method]:
    return discover(_methods_pkg, "METHOD", Method, FAMILIES, _check_signature)


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
