"""Deletion and insertion curves: does removing the top-attributed pixels hurt the class most?

Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box
Models", BMVC 2018 (deletion and insertion metrics). Pixels are ordered by attribution
(channel sum, most positive first; ties by position). Deletion sets the top `k / steps`
fraction of pixels to the baseline (0 = black) for `k = 0 .. steps` and records the target
class probability: a faithful map makes it fall fast (low area). Insertion starts from the
baseline image and restores pixels in the same order: a faithful map makes it rise fast
(high area). Areas use the trapezoid rule over the fraction of pixels in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier

DEFAULT_STEPS = 20


def auc(curves: jax.Array) -> jax.Array:
    """Trapezoid area under curves `[N, steps + 1]` sampled evenly on [0, 1] -> `[N]`."""
    raise NotImplementedError


def make_faithfulness(
    model: Any, variables: Any, input_shape: tuple[int, int, int], *,
    steps: int = DEFAULT_STEPS, baseline: float = 0.0, chunk_size: int = 7,
) -> Callable[[Any, jax.Array, jax.Array, jax.Array], dict[str, jax.Array]]:
    """Builds deletion and insertion for a model, jittable over the probe batch.

    Args:
        model: A `flax.linen.Module`, an apply function, or a `Classifier`.
        variables: The model's variables (or a matching pytree of `jax.ShapeDtypeStruct`s).
        input_shape: Per-example image shape `(H, W, C)`.
        steps: Number of deletion / insertion steps (the curves have `steps + 1` points).
        baseline: Value of a removed pixel (deletion) and of the starting image (insertion).
        chunk_size: Curve points evaluated per batched forward pass (bounds memory at
            `2 * chunk_size * N` images).

    Returns:
        `fn(variables, images [N, H, W, C], targets int32 [N], maps [N, H, W, C]) ->
        {"deletion_curve": [N, steps + 1], "insertion_curve": [N, steps + 1],
        "deletion_auc": [N], "insertion_auc": [N]}`, target probabilities, float32.

    Raises:
        ValueError: If `steps` or `chunk_size` is not a positive int.
    """
    raise NotImplementedError


def deletion_auc(model: Any, variables: Any, images: jax.Array, targets: jax.Array,
                 maps: jax.Array, *, steps: int = DEFAULT_STEPS, baseline: float = 0.0
                 ) -> tuple[jax.Array, jax.Array]:
    """Deletion area and curve: `(auc [N], curve [N, steps + 1])`; lower is more faithful."""
    raise NotImplementedError


def insertion_auc(model: Any, variables: Any, images: jax.Array, targets: jax.Array,
                  maps: jax.Array, *, steps: int = DEFAULT_STEPS, baseline: float = 0.0
                  ) -> tuple[jax.Array, jax.Array]:
    """Insertion area and curve: `(auc [N], curve [N, steps + 1])`; higher is more faithful."""
    raise NotImplementedError
