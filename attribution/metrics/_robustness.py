"""What the robustness metrics share: maps re-explained on perturbed copies of the inputs.

Every sample perturbs every probe (example n's noise from its own key folded with the sample
index) and explains the batch again; `attribution.metrics.evaluate` binds `explain` to the
key that made the maps, so a stochastic method's own noise stays fixed and only the input
moves. One `lax.map` over the samples: memory holds one
explained batch at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from attribution._conv_layout import canonical_convs
from attribution.method import AttributionFn, example_keys
from attribution.metrics._common import check_int, check_number

Noise = Callable[[jax.Array, tuple[int, ...]], jax.Array]  # (key, image shape) -> noise


def uniform(radius: float) -> Noise:
    """U(-radius, radius) on every pixel and channel (Quantus' `uniform_noise`)."""
    return lambda key, shape: jax.random.uniform(key, shape, minval=-radius, maxval=radius)


def gaussian(scale: float) -> Noise:
    """N(0, scale^2) on every pixel and channel (Quantus' `gaussian_noise`)."""
    return lambda key, shape: scale * jax.random.normal(key, shape)


def over_samples(explain: AttributionFn, variables: Any, images: jax.Array, targets: jax.Array,
                 maps: jax.Array, key: jax.Array, noise: Noise, num_samples: int,
                 compare: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]) -> jax.Array:
    """`compare(noise [N, ...], maps, perturbed maps) -> [N]` for each sample: `[S, N]`."""
    keys = example_keys(key, images.shape[0])

    def sample(s: jax.Array) -> jax.Array:
        delta = jax.vmap(lambda k: noise(jax.random.fold_in(k, s), images.shape[1:]))(keys)
        return compare(delta, maps, explain(variables, images + delta, targets, key))

    # The loop body's convolutions in XLA:CPU's fast layouts (see `attribution._conv_layout`).
    return jax.lax.map(canonical_convs(sample), jnp.arange(num_samples))


def norms(values: jax.Array) -> jax.Array:
    """The L2 (Frobenius) norm of each example `[N, ...] -> [N]`."""
    return jnp.sqrt(jnp.sum(values.reshape(values.shape[0], -1) ** 2, axis=1))


def relative_change(delta: jax.Array, maps: jax.Array, perturbed: jax.Array) -> jax.Array:
    """||a(x + delta) - a(x)|| / ||a(x)|| (0 where the map is 0 everywhere)."""
    size = norms(maps)
    return norms(perturbed - maps) / jnp.where(size > 0, size, 1.0)


def make_sensitivity(reduce: Callable[..., jax.Array]):
    """Max- or average-sensitivity's `make`: `reduce` (jnp.max, jnp.mean) over the samples."""

    def make(classifier: Any, *, num_samples: int = 10, radius: float = 0.1):
        del classifier
        num_samples = check_int(num_samples, "num_samples")
        radius = check_number(radius, "radius", low=0.0, low_open=True)

        def score(variables: Any, images: jax.Array, targets: jax.Array, maps: jax.Array,
                  explain: Any, key: jax.Array) -> jax.Array:
            changes = over_samples(explain, variables, images, targets, maps, key,
                                   uniform(radius), num_samples, relative_change)
            return reduce(changes, axis=0)

        return score

    return make
