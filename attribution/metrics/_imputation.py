"""Noisy linear imputation (ROAD): removed pixels become the weighted mean of their neighbours.

Rong, Leemann, Borisov, Kasneci & Kasneci, "A Consistent and Efficient Evaluation Strategy for
Attribution Methods", ICML 2022 (as its authors' `road_evaluation` and Quantus'
`noisy_linear_imputation`). Each removed pixel u takes the weighted mean of its in-image
8-neighbours, removed ones included, with weight 1/6 for the 4 direct neighbours and 1/12 for
the 4 diagonal ones: `s_u x_u - sum_j w_uj x_j = 0` for every removed u, where s_u sums the
weights of u's in-image neighbours. The system is symmetric positive definite whenever every
group of removed pixels touches a kept one; the reference solves it with a sparse direct
solver, here it is solved by conjugate gradients on the image grid (the matrix-vector product
is one 3 x 3 convolution), batched, a fixed number of iterations. Then Gaussian noise of
standard deviation `noise` is added to the imputed pixels, as in the paper.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

ITERATIONS = 150
NEIGHBOURS = np.array([[1 / 12, 1 / 6, 1 / 12],
                       [1 / 6, 0.0, 1 / 6],
                       [1 / 12, 1 / 6, 1 / 12]], np.float32)


def _neighbour_sum(values: jax.Array) -> jax.Array:
    """sum_j w_ij v_j over in-image neighbours: `[B, H, W] -> [B, H, W]` (zero padding)."""
    out = jax.lax.conv_general_dilated(values[:, None], jnp.asarray(NEIGHBOURS)[None, None],
                                       (1, 1), [(1, 1), (1, 1)],
                                       precision=jax.lax.Precision.HIGHEST)
    return out[:, 0]


def impute(images: jax.Array, removed: jax.Array, iterations: int = ITERATIONS) -> jax.Array:
    """Images `[B, H, W]` with the pixels in bool `removed` `[B, H, W]` imputed (no noise)."""
    weights = _neighbour_sum(jnp.ones_like(images))  # s_u: in-image weight sums.
    unknown = removed.astype(images.dtype)
    known = images * (1.0 - unknown)
    rhs = unknown * _neighbour_sum(known)

    def matvec(v: jax.Array) -> jax.Array:
        return unknown * (weights * v - _neighbour_sum(v))

    def dot(a: jax.Array, b: jax.Array) -> jax.Array:
        return jnp.sum(a * b, axis=(1, 2), keepdims=True)

    def step(_, state):
        x, r, p, rr = state
        ap = matvec(p)
        pap = dot(p, ap)
        alpha = jnp.where(pap > 0, rr / jnp.where(pap > 0, pap, 1.0), 0.0)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = dot(r, r)
        beta = jnp.where(rr > 0, rr_new / jnp.where(rr > 0, rr, 1.0), 0.0)
        return x, r, r + beta * p, rr_new

    start = jnp.zeros_like(images)
    x, *_ = jax.lax.fori_loop(0, iterations, step, (start, rhs, rhs, dot(rhs, rhs)))
    return known + unknown * x


def impute_with_noise(images: jax.Array, removed: jax.Array, keys: jax.Array, noise: float,
                      iterations: int = ITERATIONS) -> jax.Array:
    """`impute` per channel of images `[B, H, W, C]`, plus N(0, noise^2) on the imputed pixels,
    image b's noise from `keys[b]`."""
    channels = jnp.moveaxis(images, -1, 0)  # [C, B, H, W]
    filled = jnp.moveaxis(jax.vmap(lambda c: impute(c, removed, iterations))(channels), 0, -1)
    draws = jax.vmap(lambda k: jax.random.normal(k, images.shape[1:], images.dtype))(keys)
    return filled + noise * draws * removed[..., None]
