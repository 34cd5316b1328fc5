"""The model a callback explains: its kind's adapter, and how to call it for logits.

Both callbacks take the same model arguments: `model` (linen, NNX, or a function),
`model_kwargs`, `logits` and `preprocess` (see `attribution.as_classifier`), and accept as
`state` whatever that model kind's adapter accepts (see `attribution.model_kinds`).
"""

from collections.abc import Callable, Mapping
from typing import Any

import jax

import attribution
from attribution.classifier import LogitsSpec
from attribution.model_kinds import kind_of


class CallbackModel:
    """A model with its call options; checks them when constructed."""

    def __init__(self, model: Any, model_kwargs: Mapping[str, Any] | None = None,
                 logits: LogitsSpec = None,
                 preprocess: Callable[[jax.Array], jax.Array] | None = None):
        if preprocess is not None and not callable(preprocess):
            raise ValueError(f"preprocess must be a function of the images; got {preprocess!r}.")
        self.kind = kind_of(model, model_kwargs)
        self.logits = logits
        self.preprocess = preprocess

    def variables_of(self, state: Any) -> Any:
        """The model's variables in a hook's `state` (module, NNX state, TrainState, dict)."""
        return self.kind.variables_of(state)

    def classifier(self, variables: Any, input_shape: tuple[int, int, int]
                   ) -> attribution.Classifier:
        """The model as the attribution engine calls it (evaluation mode, logits picked)."""
        return attribution.as_classifier(self.kind, variables, input_shape, logits=self.logits,
                                         preprocess=self.preprocess)

