"""Complexity: the entropy of the map's magnitudes as a distribution over pixels.

Bhatt, Weller & Moura, "Evaluating and Aggregating Feature-based Model Explanations", IJCAI
2020 (as Quantus' `Complexity`). With `p_i = |a_i| / sum_j |a_j|` over the map's pixels
(channels summed, then the absolute value), the score is `-sum_i p_i log p_i` (natural log;
0 log 0 = 0): 0 when one pixel carries all relevance, log(H W) for a uniform map. Lower is a
simpler explanation.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier
from attribution.metric import Metric, MetricFn
from attribution.metrics._common import pixel_relevance


def entropy(values: jax.Array) -> jax.Array:
    """Entropy of non-negative `values` `[N, d]` normalized to sum 1: `[N]` (0 if all zero)."""
    total = jnp.sum(values, axis=-1, keepdims=True)
    p = values / jnp.where(total > 0, total, 1.0)
    return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0), axis=-1)


def make(classifier: Classifier) -> MetricFn:
    del classifier

    def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
              explain: Any, key: jax.Array) -> jax.Array:
        return entropy(jnp.abs(pixel_relevance(maps)))

    return score


METRIC = Metric(name="complexity", make=make, family="complexity", higher_is_better=False,
                summary="entropy of |map| / sum |map| over pixels (nats)")
