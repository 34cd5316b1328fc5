"""The classifier as the attribution engine sees it: a pure function from images to logits.

Every method explains the logit of a target class (pre-softmax), never the loss, so
the explanation does not depend on the labels the model was trained with.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True, eq=False)
class Classifier:
    """A classifier as the engine sees it: logits = apply_fn(variables, images).

    Attributes:
        apply_fn: `(variables, images [N, H, W, C]) -> logits [N, K]`; pure and jittable.
        input_shape: The per-example image shape `(H, W, C)`.
        variables: A template of the variables pytree: real arrays or `jax.ShapeDtypeStruct`s.
            Methods may trace the model with it; the values used are the ones passed at call time.
    """

    apply_fn: Callable[[Any, jax.Array], jax.Array]
    input_shape: tuple[int, int, int]
    variables: Any

    def logits(self, variables: Any, images: jax.Array) -> jax.Array:
        """Returns the logits `[N, K]` for images `[N, H, W, C]`."""
        return self.apply_fn(variables, images)

    def target_logit(self, variables: Any, images: jax.Array, targets: jax.Array) -> jax.Array:
        """Returns the logit of each example's target class, shape `[N]`.

        Args:
            variables: The model variables.
            images: Float images `[N, H, W, C]`.
            targets: Int class indices `[N]`, each in `[0, K)`.
        """
        logits = self.logits(variables, images)
        return jnp.take_along_axis(logits, targets[:, None].astype(jnp.int32), axis=1)[:, 0]

    def predicted_targets(self, variables: Any, images: jax.Array) -> jax.Array:
        """Returns the predicted class (argmax of the logits) per example, int32 `[N]`."""
        return jnp.argmax(self.logits(variables, images), axis=-1).astype(jnp.int32)

    @functools.cached_property
    def num_classes(self) -> int:
        """The number of logits K, found by abstract evaluation (no computation)."""
        return _output_shape(self.apply_fn, self.variables, self.input_shape)[1]


def _output_shape(apply_fn: Callable, variables: Any, input_shape: tuple[int, ...]):
    images = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    return jax.eval_shape(apply_fn, variables, images).shape


def as_classifier(model: Any, variables: Any, input_shape: tuple[int, int, int]) -> Classifier:
    """Wraps a Flax module or an apply function as a `Classifier`.

    Args:
        model: A `flax.linen.Module` (its `apply` is used), a plain function
            `(variables, images [N, H, W, C]) -> logits [N, K]`, or a `Classifier` (returned as is).
        variables: The model's variables (`{"params": ...}`), real arrays or the same pytree of
            `jax.ShapeDtypeStruct`s.
        input_shape: The per-example image shape `(H, W, C)`.

    Returns:
        The classifier.

    Raises:
        ValueError: If `input_shape` is not three positive ints, `model` is not callable, or the
            model does not map `[1, H, W, C]` images to `[1, K]` logits.
    """
    if isinstance(model, Classifier):
        return model
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(f"input_shape must be three positive ints (H, W, C); got {input_shape!r}.")
    if isinstance(model, nn.Module):
        apply_fn = model.apply
    elif callable(model):
        apply_fn = model
    else:
        raise ValueError(
            f"model must be a flax.linen.Module or a function (variables, images) -> logits; "
            f"got {type(model).__name__}."
        )
    out = _output_shape(apply_fn, variables, shape)
    if len(out) != 2 or out[0] != 1:
        raise ValueError(
            f"The model must map images [N, {', '.join(map(str, shape))}] to logits [N, K]; "
            f"for N=1 it returned shape {tuple(out)}."
        )
    return Classifier(apply_fn=apply_fn, input_shape=shape, variables=variables)
