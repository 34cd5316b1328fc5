"""What KernelSHAP and LIME share: a weighted linear model of the target logit over patches.

Each example draws coalitions z in {0, 1}^P (patch p on: the image's pixels; off: the fill)
from its own key, evaluates the target logit y(z) on the masked images, and fits
y ~ b + z . phi by weighted least squares. The sufficient statistics (the weighted Gram matrix
of [1, z] and its product with y) are summed pass by pass (`evaluation_sum`), so memory does
not grow with the number of samples, and the normal equations are solved at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from attribution._chunked import evaluation_sum
from attribution.classifier import Classifier
from attribution.method import example_keys
from attribution.methods._patches import masked

# `draw(key, sample) -> z float [P]` and `weight(z) -> w float []`.
Draw = Callable[[jax.Array, jax.Array], jax.Array]
Weight = Callable[[jax.Array], jax.Array]


def fit(classifier: Classifier, variables: Any, images: jax.Array, targets: jax.Array,
        key: jax.Array, *, index: jax.Array, count: int, fill: jax.Array, num_samples: int,
        draw: Draw, weight: Weight, ridge: float, chunk_size: int | None,
        relative_ridge: bool = True) -> jax.Array:
    """The coefficients phi `[N, P]` of each example's weighted linear fit.

    Args:
        index: Each pixel's feature, int32 `[N, H, W]` in `[0, count)`.
        ridge: Added to the Gram matrix's diagonal (not the intercept's): > 0 keeps the
            system solvable with few samples.
        relative_ridge: Scale `ridge` by the sum of the weights (a penalty per unit of data
            rather than absolute).
    """
    n = images.shape[0]
    keys = example_keys(key, n)

    def statistics(samples: jax.Array, examples: jax.Array) -> jax.Array:
        z = jax.vmap(draw)(keys[examples], samples)  # [c, P]
        y = classifier.target_logit(variables, masked(images[examples], z, index[examples], fill),
                                    targets[examples])
        w = jax.vmap(weight)(z)
        design = jnp.concatenate([jnp.ones_like(z[:, :1]), z], axis=1)  # [c, P + 1]
        gram = w[:, None, None] * design[:, :, None] * design[:, None, :]
        moment = (w * y)[:, None] * design
        return jnp.concatenate([gram.reshape(len(z), -1), moment, w[:, None]], axis=1)

    total = evaluation_sum(statistics, num_samples, n, chunk_size, max_lanes=1)
    size = count + 1
    gram = total[:, :size * size].reshape(n, size, size)
    moment = total[:, size * size:size * size + size]
    scale = total[:, -1] if relative_ridge else jnp.ones_like(total[:, -1])
    penalty = jnp.diag(jnp.ones(size).at[0].set(0.0))
    system = gram + ridge * scale[:, None, None] * penalty
    return solve_symmetric(system, moment)[:, 1:]


def solve_symmetric(system: jax.Array, rhs: jax.Array) -> jax.Array:
    """x `[N, K]` with `system @ x = rhs` for symmetric positive definite `system` `[N, K, K]`.

    Gauss-Jordan elimination in plain JAX rather than `jnp.linalg.solve`: on CPU that calls
    LAPACK through the OpenBLAS bundled with SciPy, and concurrent calls from XLA's threads
    (several lanes, or a `lax.map` over model copies in the sanity checks) deadlocked the
    process. Every step is elementwise per example, so an example's answer does not depend on
    the batch it sits in. No pivoting is needed for a positive definite system.
    """
    size = system.shape[-1]
    rows = jnp.arange(size)

    def eliminate(k: jax.Array, carry: tuple[jax.Array, jax.Array]
                  ) -> tuple[jax.Array, jax.Array]:
        a, b = carry
        pivot = a[:, k, k]
        row = a[:, k, :] / pivot[:, None]  # [N, K]
        b_k = b[:, k] / pivot  # [N]
        factor = jnp.where(rows[None, :] == k, 0.0, a[:, :, k])  # [N, K]; row k kept
        a = a - factor[:, :, None] * row[:, None, :]
        b = b - factor * b_k[:, None]
        a = a.at[:, k, :].set(row)
        b = b.at[:, k].set(b_k)
        return a, b

    _, solution = jax.lax.fori_loop(0, size, eliminate, (system, rhs))
    return solution
