"""A plain function `(variables, images) -> output`: called as it is.

It has no layers the engine can name unless it calls linen modules inside (their
interception still works), and no initializers, so parameter randomization does not apply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax

from attribution.model_kinds.base import ModelKind, mapping_fields


def accepts(model: Any) -> bool:
    return callable(model)


class FunctionKind(ModelKind):
    """A pure, jittable function of the variables and a batch of images."""

    name = "function"

    def __init__(self, fn: Callable[[Any, jax.Array], Any],
                 model_kwargs: Mapping[str, Any] | None = None):
        self.fn = fn
        self.model_kwargs = dict(model_kwargs or {})

    def apply(self, variables: Any, images: jax.Array) -> Any:
        return self.fn(variables, images, **self.model_kwargs)

    def variables_of(self, state: Any) -> Any:
        if hasattr(state, "params") and not isinstance(state, Mapping):
            return {"params": state.params, **mapping_fields(state)}
        return state  # The function's own variables pytree, whatever its layout.
