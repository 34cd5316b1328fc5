"""Model kinds: one adapter per kind of model (see `base.ModelKind`), chosen here once.

    kind_of(model)  # LinenKind, NnxKind, KerasKind or FunctionKind

Adding a kind is one file with `accepts(model)` and a `ModelKind` subclass, and one line in
`_KINDS` (the first kind that accepts a model wins, so the catch-all function comes last).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attribution.model_kinds import keras_model, linen_module, nnx_module, plain_function
from attribution.model_kinds.base import ModelKind
from attribution.model_kinds.interception import LayerCall, intercept

_KINDS = (
    (linen_module.accepts, linen_module.LinenKind),
    (nnx_module.accepts, nnx_module.NnxKind),
    (keras_model.accepts, keras_model.KerasKind),
    (plain_function.accepts, plain_function.FunctionKind),
)


def kind_of(model: Any, model_kwargs: Mapping[str, Any] | None = None) -> ModelKind:
    """The adapter of `model` (a `ModelKind` is returned as is).

    Args:
        model: A `flax.linen.Module`, a `flax.nnx.Module`, a `keras.Model` (JAX backend), or a
            function
            `(variables, images, **model_kwargs) -> output`.
        model_kwargs: Keyword arguments for every model call (added to the evaluation-mode
            keywords the kind passes by itself).

    Raises:
        ValueError: If `model` is none of those.
    """
    if isinstance(model, ModelKind):
        return model
    if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
        raise ValueError(f"model_kwargs must be a mapping of keyword arguments; got "
                         f"{model_kwargs!r}.")
    for accepts, kind in _KINDS:
        if accepts(model):
            return kind(model, model_kwargs)
    raise ValueError(
        f"model must be a flax.linen.Module, a flax.nnx.Module, a keras.Model or a function "
        f"(variables, images) -> logits; got {type(model).__name__}.")


__all__ = ["LayerCall", "ModelKind", "intercept", "kind_of"]
