"""Keras-style training callbacks that explain a model while it trains, and writers.

    from callbacks import AttributionCallback, SanityCallback, TensorBoardWriter, select_probes
    history = callbacks.load_history(workdir)   # every firing's maps, for a notebook
"""

from callbacks.attribution_callback import AttributionCallback
from callbacks.base import Callback, CallbackList
from callbacks.history import History, load_history
from callbacks.probes import load_or_select_probes, select_probes
from callbacks.sanity_callback import SanityCallback
from callbacks.tensorboard_writer import TensorBoardWriter

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
