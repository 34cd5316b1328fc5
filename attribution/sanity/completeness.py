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
    raise NotImplementedError


def make_completeness_gap(model: Any, variables: Any, input_shape: tuple[int, int, int], *,
                          baseline: float = 0.0
                          ) -> Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]:
    """Builds `fn(variables, images [N, H, W, C], targets [N], maps [N, H, W, C]) -> gap [N]`.

    `baseline` must be the one the IG maps were computed with (a scalar image value).
    """
    raise NotImplementedError
