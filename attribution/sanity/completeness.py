"""Integrated gradients' completeness gap: how far the map's sum is from the logit change.

Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017: the exact
path integral sums to `f(x) - f(baseline)`; a Riemann sum with few steps does not quite. The
relative gap tells whether the step count suffices (the paper suggests within 5%).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from attribution.classifier import as_classifier

_EPS = 1e-6


def completeness_gap(maps: jax.Array, target_logits: jax.Array,
                     baseline_logits: jax.Array) -> jax.Array:
    """`|sum(map) - (f(x) - f(b))| / |f(x) - f(b)|` per example.

    Args:
        maps: IG maps `[N, H, W, C]`.
        target_logits: The target class logit at the input, `[N]`.
        baseline_logits: The same class's logit at the baseline, `[N]`.

    Returns:
        float32 `[N]`; the denominator is floored at 1e-6.
    """
    if maps.ndim != 4 or target_logits.shape != (maps.shape[0],) or (
            baseline_logits.shape != target_logits.shape):
        raise ValueError(f"completeness_gap needs maps [N, H, W, C] and logits [N]; got "
                         f"{maps.shape}, {target_logits.shape}, {baseline_logits.shape}.")
    change = target_logits - baseline_logits
    total = jnp.sum(maps, axis=(1, 2, 3))
    return (jnp.abs(total - change) / jnp.maximum(jnp.abs(change), _EPS)).astype(jnp.float32)


def make_completeness_gap(model: Any, variables: Any, input_shape: tuple[int, int, int], *,
                          baseline: float = 0.0
                          ) -> Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]:
    """Builds `fn(variables, images [N, H, W, C], targets [N], maps [N, H, W, C]) -> gap [N]`.

    `baseline` must be the one the IG maps were computed with (a scalar image value).
    """
    if isinstance(baseline, bool) or not isinstance(baseline, (int, float, np.floating)):
        raise ValueError(f"baseline must be a number; got {baseline!r}.")
    classifier = as_classifier(model, variables, input_shape)

    def gap(variables: Any, images: jax.Array, targets: jax.Array,
            maps: jax.Array) -> jax.Array:
        targets = targets.astype(jnp.int32)
        start = jnp.full_like(images, baseline)
        both = classifier.target_logit(variables, jnp.concatenate([images, start]),
                                       jnp.tile(targets, 2))
        n = images.shape[0]
        return completeness_gap(maps, both[:n], both[n:])

    return gap
