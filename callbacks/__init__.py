"""Keras-style training callbacks that explain a model while it trains, and writers.

    from callbacks import AttributionCallback, TensorBoardWriter, select_probes
"""

from callbacks.attribution_callback import AttributionCallback
from callbacks.base import Callback, CallbackList
from callbacks.probes import load_or_select_probes, select_probes
from callbacks.tensorboard_writer import TensorBoardWriter

__all__ = [
    "AttributionCallback",
    "Callback",
    "CallbackList",
    "TensorBoardWriter",
    "load_or_select_probes",
    "select_probes",
]
