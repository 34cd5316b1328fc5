"""Named sets of methods, usable wherever method names are (configs, callbacks).

A set is every registered method of a family (`Method.family`), so a new method joins its set
by declaring its family: "gradient_family", "propagation", "cam_family", "perturbation";
"all_applicable" is every registered method. With the model at hand, a set keeps only the
members that apply to it (Grad-CAM and the CAM family need a spatial layer, CAM a GAP head,
the ReLU rules ReLUs); a method named on its own is kept, to fail with its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from attribution import registry

SETS = {"gradient_family": "gradient", "propagation": "propagation", "cam_family": "cam",
        "perturbation": "perturbation", "all_applicable": None}


def names() -> list[str]:
    """The set names."""
    return list(SETS)


def members(set_name: str) -> list[str]:
    """The registered methods of a set, sorted (regardless of any model)."""
    family = SETS[set_name]
    return [n for n in registry.names() if family is None or registry.get(n).family == family]


def expand(requested: Iterable[str],
           applicable: Callable[[], Collection[str]] | None = None) -> list[str]:
    """Method names, each set replaced by its members, in order and without repeats.

    Args:
        requested: Method and set names.
        applicable: Returns the methods that apply to the model (called once, only if a set
            is requested); None keeps every member.

    Raises:
        ValueError: For a name that is neither a method nor a set (the message lists both).
    """
    out: list[str] = []
    known = set(registry.names())
    usable: Collection[str] | None = None
    for name in requested:
        if name in known:
            chosen = [name]
        elif name in SETS:
            if applicable is not None and usable is None:
                usable = set(applicable())
            chosen = [m for m in members(name) if usable is None or m in usable]
        else:
            raise ValueError(f"Unknown attribution method or set {name!r}; valid methods: "
                             f"{', '.join(registry.names())}; valid sets: {', '.join(SETS)}.")
        out.extend(m for m in chosen if m not in out)
    return out


def has_sets(requested: Iterable[str]) -> bool:
    """Whether any of the names is a set."""
    return any(name in SETS for name in requested)
