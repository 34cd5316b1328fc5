"""Sparseness: the Gini index of the map's magnitudes.

Chalasani, Chen, Chowdhury, Jha & Wu, "Concise Explanations of Neural Networks using
Adversarial Training", ICML 2020 (as Quantus' `Sparseness`). With the magnitudes `|a|` of the
map's pixels (channels summed first, then the absolute value; plus 1e-7 so an all-zero map is
defined) sorted ascending as `a_1 <= ... <= a_d`,

    G = sum_i (2 i - d - 1) a_i / (d sum_i a_i),

0 when every pixel carries the same relevance, towards 1 when one pixel carries it all.
Higher is sparser, i.e. more concise.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier
from attribution.metric import Metric, MetricFn
from attribution.metrics._common import pixel_relevance

EPSILON = 1e-7


def gini(values: jax.Array) -> jax.Array:
    """The Gini index of non-negative `values` `[N, d]` along the last axis: `[N]`."""
    d = values.shape[-1]
    ordered = jnp.sort(values, axis=-1)
    weights = 2.0 * jnp.arange(1, d + 1) - d - 1
    return jnp.sum(weights * ordered, axis=-1) / (d * jnp.sum(ordered, axis=-1))


def make(classifier: Classifier) -> MetricFn:
    del classifier

    def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
              explain: Any, key: jax.Array) -> jax.Array:
        return gini(jnp.abs(pixel_relevance(maps)) + EPSILON)

    return score


METRIC = Metric(name="sparseness", make=make, family="complexity", higher_is_better=True,
                summary="Gini index of |map| (1 = all relevance on one pixel)")
