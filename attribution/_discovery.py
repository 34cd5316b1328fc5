"""Finding the one-file plug-ins of a package: methods in `attribution/methods/`, metrics in
`attribution/metrics/`. Each public module defines one object (`METHOD`, `METRIC`) named like
the module, with a family from a fixed list; modules starting with an underscore are helpers."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any


def discover(package: ModuleType, attribute: str, kind: type, families: Sequence[str],
             check: Callable[[Any], None] = lambda found: None) -> dict[str, Any]:
    """name -> the `attribute` object of each public module of `package`, sorted by name.

    Raises:
        TypeError: A module without a `kind` object, named unlike its module, with an unknown
            family, or failing `check`.
    """
    found = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        item = getattr(module, attribute, None)
        if not isinstance(item, kind):
            raise TypeError(f"{module.__name__} must define {attribute}, a {kind.__name__}.")
        if item.name != info.name:
            raise TypeError(f"{module.__name__}.{attribute} is named {item.name!r}; it must be "
                            f"named {info.name!r}, like its module.")
        if item.family not in families:
            raise TypeError(f"{module.__name__}.{attribute} has family {item.family!r}; valid "
                            f"families: {', '.join(families)}.")
        check(item)
        found[info.name] = item
    return dict(sorted(found.items()))
