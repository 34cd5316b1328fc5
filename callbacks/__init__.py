"""Keras-style training callbacks that explain a model while it trains, and writers.

    from callbacks import AttributionCallback, SanityCallback, TensorBoardWriter, select_probes
    history = callbacks.load_history(workdir)   # every firing's maps, for a notebook

The names below load their module on first use: a tool that only reads event files
(`python -m trainer.verdict`) starts without JAX (0.3 s instead of about 2 s).
"""

import importlib
from typing import Any

# Public name -> the module that defines it.
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

__all__ = list(_MODULES)


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module 'callbacks' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"callbacks.{_MODULES[name]}"), name)
    globals()[name] = value  # Later lookups skip this function.
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
