"""Pixel and patch orderings for the perturbation curves (pixel flipping, monotonicity)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def steps_of(order: jax.Array, features_in_step: int) -> jax.Array:
    """int `[N, pixels]`: the step (0-based) at which each pixel is reached when the pixels are
    taken `features_in_step` at a time in `order` `[N, pixels]` (a permutation per row)."""
    ranks = jnp.argsort(order, axis=1, stable=True)
    return ranks // features_in_step


def ordered(relevance: jax.Array, descending: bool) -> jax.Array:
    """Pixel indices `[N, pixels]` by relevance; ties in pixel order (a stable sort)."""
    return jnp.argsort(-relevance if descending else relevance, axis=1, stable=True)
