"""What the engine needs from a kind of model: one small adapter per kind.

Methods, sanity checks and callbacks never ask which kind of model they hold (linen, NNX, a
plain function); they ask its adapter, a `ModelKind`, to:
- call the model in evaluation mode as a pure function `(variables, images) -> output`;
- find the variables in whatever `state` a training loop hands a callback;
- say which variables are trainable parameters and which layer owns each;
- draw fresh parameters with each layer's own initializers (parameter randomization).
Layers are reached by path through `attribution.model_kinds.interception`.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Mapping
from typing import Any

import jax

# The TrainState fields that are not model variables.
TRAIN_STATE_FIELDS = frozenset({"step", "apply_fn", "params", "tx", "opt_state", "graphdef"})


class ModelKind(abc.ABC):
    """The adapter of one model kind. Subclasses live one per file in this package."""

    #: A short name for messages, e.g. "linen".
    name: str = ""

    @abc.abstractmethod
    def apply(self, variables: Any, images: jax.Array) -> Any:
        """The model's raw output for images `[N, H, W, C]`, in evaluation mode; pure."""

    @abc.abstractmethod
    def variables_of(self, state: Any) -> Any:
        """The variables in a training loop's `state`; TypeError naming what is accepted."""

    def default_variables(self) -> Any:
        """The variables to use when none are given (NNX: the module's own state)."""
        raise ValueError(f"variables are required for a {self.name} model.")

    def check(self, variables: Any, input_shape: tuple[int, int, int]) -> Any:
        """Raises ValueError if the model cannot run in evaluation mode with `variables`.

        Returns the model's abstract output for one image when the check had to trace the
        model to find out (the classifier reuses it instead of tracing again), else None.
        """
        del variables, input_shape  # Nothing to check for a kind that only calls a function.
        return None

    # Parameter randomization ---------------------------------------------------------------

    def parameter_layers(self, variables: Any) -> list[str | None]:
        """For every leaf of `variables` (in `jax.tree.leaves` order), the layer that owns it
        if it is a trainable parameter, else None (statistics, RNG state: never randomized)."""
        raise ValueError(self._no_reinit())

    def fresh_variables(self, variables: Any, key: jax.Array,
                        input_shape: tuple[int, int, int]) -> Any:
        """`variables` with every trainable parameter drawn anew by its layer's initializer."""
        raise ValueError(self._no_reinit())

    def _no_reinit(self) -> str:
        return (f"Parameter randomization needs a model whose layers can be re-initialized (a "
                f"flax.linen.Module, a flax.nnx.Module or a keras.Model); a {self.name} has no "
                f"initializers.")


def mapping_fields(state: Any) -> dict[str, Any]:
    """A TrainState subclass's extra fields that hold mappings (collections, NNX states)."""
    fields = getattr(state, "__dataclass_fields__", None) or {}
    extra = {}
    for name in fields:
        if name in TRAIN_STATE_FIELDS:
            continue
        value = getattr(state, name, None)
        if isinstance(value, Mapping) and value and all(
                hasattr(leaf, "shape") for leaf in jax.tree.leaves(value)):
            extra[name] = value
    return extra


def fast_compiling_draws() -> contextlib.AbstractContextManager:
    """Random draws traced in this context use threefry's non-partitionable form.

    XLA:CPU compiles the partitionable form for an N-d parameter shape slowly (the CNN's init
    1.7-2 s, its four kernels' raw bits alone 1.4 s); the non-partitionable form draws a flat
    vector and compiles in 0.5-0.7 s. Parameters here are drawn whole, never sharded, so the
    partitionable form buys nothing; the draws are as random, and different numbers.
    """
    return jax.threefry_partitionable(False)
