"""Local Lipschitz estimate: the steepest change of the map relative to the input change.

Alvarez-Melis & Jaakkola, "On the Robustness of Interpretability Methods", ICML workshop 2018
(as Quantus' `LocalLipschitzEstimate`). Over `num_samples` draws of Gaussian noise (standard
deviation `noise_scale`, Quantus' 0.1) on every pixel,

    max_delta ||a(x + delta) - a(x)||_2 / (||delta||_2 + 1e-10),

with each map divided by its own largest magnitude first, so methods of different scales
compare (Quantus divides by the largest value of the whole batch of maps instead). Lower is
better. Defaults: 10 samples (Quantus 200).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier
from attribution.metric import Metric, MetricFn
from attribution.metrics import _robustness
from attribution.metrics._common import check_int, check_number

EPSILON = 1e-10


def by_max(maps: jax.Array) -> jax.Array:
    """Each map divided by its largest magnitude (an all-zero map stays 0)."""
    top = jnp.max(jnp.abs(maps.reshape(maps.shape[0], -1)), axis=1)
    return maps / jnp.where(top > 0, top, 1.0).reshape(-1, *([1] * (maps.ndim - 1)))


def lipschitz(delta: jax.Array, maps: jax.Array, perturbed: jax.Array) -> jax.Array:
    return (_robustness.norms(by_max(perturbed) - by_max(maps))
            / (_robustness.norms(delta) + EPSILON))


def make(classifier: Classifier, *, num_samples: int = 10, noise_scale: float = 0.1
         ) -> MetricFn:
    del classifier
    num_samples = check_int(num_samples, "num_samples")
    noise_scale = check_number(noise_scale, "noise_scale", low=0.0, low_open=True)

    def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
              explain: Any, key: jax.Array) -> jax.Array:
        ratios = _robustness.over_samples(explain, variables, images, targets, maps, key,
                                          _robustness.gaussian(noise_scale), num_samples,
                                          lipschitz)
        return jnp.max(ratios, axis=0)

    return score


METRIC = Metric(name="local_lipschitz_estimate", make=make, family="robustness",
                higher_is_better=False, explains=True,
                summary="largest ||a(x + noise) - a(x)|| / ||noise|| (maps scaled to max 1)")
