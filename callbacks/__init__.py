"""Keras-style training callbacks that explain a model while it trains, and writers.

    from callbacks import AttributionCallback, SanityCallback, TensorBoardWriter, select_probes
"""

from callbacks.attribution_callback import AttributionCallback
from callbacks.base import Callback, CallbackList
from callbacks.probes import load_or_select_probes, select_probes
from callbacks.sanity_callback import SanityCallback
from callbacks.tensorboard_writer import TensorBoardWriter

__all__ = [
    "AttributionCallback",
    "Callback",
    "CallbackList",
    "SanityCallback",
    "TensorBoardWriter",
    "load_or_select_probes",
    "select_probes",
]
