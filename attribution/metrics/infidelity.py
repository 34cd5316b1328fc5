"""Infidelity: how well the map predicts the output change under random input perturbations.

Yeh, Hsieh, Suggala, Inouye & Ravikumar, "On the (In)fidelity and Sensitivity of
Explanations", NeurIPS 2019, as Captum's `captum.metrics.infidelity` computes it: with
perturbations I drawn `num_samples` times (here Gaussian, standard deviation `noise_scale`, on
every pixel and channel),

    INFD = mean_I (sum(I * a) - (f(x) - f(x - I)))^2

on the target logit. With `normalize=True` (Captum's option; its default is False) the map is
first scaled by the beta that minimizes that mean, `beta = mean(s d) / mean(s^2)` with
`s = sum(I * a)` and `d = f(x) - f(x - I)`, which makes the score independent of the map's
scale and comparable across methods. Lower is better.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier
from attribution.method import example_keys
from attribution.metric import Metric, MetricFn
from attribution.metrics._common import (
    check_int,
    check_number,
    check_output,
    over_steps,
    target_output,
)


def perturbations(keys: jax.Array, sample: jax.Array, shape: tuple[int, ...], scale: float
                  ) -> jax.Array:
    """Gaussian perturbations `[N, *shape]`, example n's from its key folded with `sample`."""
    return jax.vmap(lambda k: scale * jax.random.normal(jax.random.fold_in(k, sample), shape))(
        keys)


def make(classifier: Classifier, *, num_samples: int = 32, noise_scale: float = 0.1,
         normalize: bool = True, output: str = "logit") -> MetricFn:
    num_samples = check_int(num_samples, "num_samples")
    noise_scale = check_number(noise_scale, "noise_scale", low=0.0, low_open=True)
    output = check_output(output)

    def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
              explain: Any, key: jax.Array) -> jax.Array:
        n = images.shape[0]
        keys = example_keys(key, n)
        before = target_output(classifier, variables, images, targets, output)

        def sample(s: jax.Array) -> tuple[jax.Array, jax.Array]:
            noise = perturbations(keys, s, images.shape[1:], noise_scale)
            after = target_output(classifier, variables, images - noise, targets, output)
            return jnp.sum(noise * maps, axis=(1, 2, 3)), before - after

        sums, drops = over_steps(sample, num_samples, n)
        if normalize:
            denominator = jnp.mean(sums**2, axis=0)
            beta = jnp.where(denominator > 0, jnp.mean(sums * drops, axis=0)
                             / jnp.where(denominator > 0, denominator, 1.0), 0.0)
            sums = beta * sums
        return jnp.mean((sums - drops) ** 2, axis=0)

    return score


METRIC = Metric(name="infidelity", make=make, family="faithfulness", higher_is_better=False,
                summary="mean squared error of sum(noise * map) against the logit change")
