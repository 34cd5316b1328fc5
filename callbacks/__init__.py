"""Keras-style training callbacks that explain a model while it trains, and writers.

    from callbacks import AttributionCallback, SanityCallback, TensorBoardWriter, select_probes
    history = callbacks.load_history(workdir)   # every firing's maps, for a notebook

The names below load their module on first use: a tool that only reads event files
(`python -m trainer.verdict`) starts without JAX (0.3 s instead of about 2.3 s).
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # What type checkers and editors see; at run time, __getattr__ below.
    from callbacks.attribution_callback import AttributionCallback
    from callbacks.base import Callback, CallbackList
    from callbacks.history import History, load_history
    from callbacks.probes import load_or_select_probes, select_probes
    from callbacks.sanity_callback import SanityCallback
    from callbacks.tensorboard_writer import TensorBoardWriter

_MODULES = {
    "AttributionCallback": "attribution_callback",
    "Callback": "base",
    "CallbackList": "base",
    "History": "history",
    "SanityCallback": "sanity_callback",
    "TensorBoardWriter": "tensorboard_writer",
    "load_history": "history",
    "load_or_select_probes": "probes",
    "select_probes": "probes",
}

__all__ = [
    "AttributionCallback",
    "Callback",
    "CallbackList",
    "History",
    "SanityCallback",
    "TensorBoardWriter",
    "load_history",
    "load_or_select_probes",
    "select_probes",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module 'callbacks' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"callbacks.{_MODULES[name]}"), name)
    globals()[name] = value  # Later lookups skip this function.
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
