"""Blur integrated gradients.

Xu, Venugopalan & Sundararajan, "Attribution in Scale and Space", CVPR 2020.

Integrated gradients along a path of ever less blurred images instead of a straight line from
a baseline: from a Gaussian blur of width `max_sigma` down to the image itself, the map is

    -sum_i (sigma_{i+1} - sigma_i) * d blur(x, s)/ds |_{s = sigma_i} * grad f(blur(x, sigma_i)),

with `steps` widths sigma_i = i max_sigma / steps (or their square roots' schedule with
`sqrt=True`) and the derivative along sigma taken by a forward difference of `grad_step`, as
PAIR saliency's `BlurIG` does (its defaults: 50, 100, 0.01). The blur is scipy's
`gaussian_filter` with zero padding (kernel truncated at 4 sigma), per channel, written as one
[H, H] and one [W, W] matrix per width, so every step is two matmuls on the device.

Options:
    max_sigma: The widest blur, in pixels.
    steps: Points on the path.
    grad_step: The forward difference's step in sigma.
    sqrt: Space the widths as PAIR's `sqrt=True` does (sqrt(i max_sigma / steps)).
    chunk_size: Path points x examples per pass; None: 64 per CPU core (up to 8 cores), 4,096
        on accelerators.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from attribution._checks import positive_int
from attribution._chunked import chunk_size_option, evaluation_sum, target_logit_grad
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method

TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter's default.


def blur_matrix(size: int, sigma: float) -> np.ndarray:
    """`[size, size]`: a 1-D Gaussian blur with zero padding, as scipy's `gaussian_filter1d`."""
    if sigma == 0:
        return np.eye(size)
    radius = int(TRUNCATE * sigma + 0.5)
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    offsets = np.arange(size)[None, :] - np.arange(size)[:, None]  # column minus row
    inside = np.abs(offsets) <= radius
    return np.where(inside, kernel[np.clip(offsets + radius, 0, 2 * radius)], 0.0)


def _positive_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{name} must be a number > 0; got {value!r}.")
    return float(value)


def make(classifier: Classifier, *, max_sigma: float = 50.0, steps: int = 100,
         grad_step: float = 0.01, sqrt: bool = False, chunk_size: int | None = None
         ) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: For a non-positive `max_sigma`, `steps`, `grad_step` or `chunk_size`.
    """
    max_sigma = _positive_number(max_sigma, "max_sigma")
    steps = positive_int(steps, "steps")
    grad_step = _positive_number(grad_step, "grad_step")
    chunk_size = chunk_size_option(chunk_size)
    height, width, _ = classifier.input_shape
    sigmas = [i * max_sigma / steps for i in range(steps + 1)]
    if sqrt:
        sigmas = [math.sqrt(s) for s in sigmas]
    widths = np.diff(sigmas).astype(np.float32)
    rows = np.stack([blur_matrix(height, s) for s in sigmas[:-1]]).astype(np.float32)
    cols = np.stack([blur_matrix(width, s) for s in sigmas[:-1]]).astype(np.float32)
    rows_next = np.stack([blur_matrix(height, s + grad_step) for s in sigmas[:-1]])
    cols_next = np.stack([blur_matrix(width, s + grad_step) for s in sigmas[:-1]])

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        del key
        tables = [jnp.asarray(t, images.dtype) for t in
                  (rows, cols, rows_next.astype(np.float32), cols_next.astype(np.float32),
                   widths)]

        def contributions(points: jax.Array, examples: jax.Array) -> jax.Array:
            row, col, row_next, col_next, width_of = (t[points] for t in tables)

            def blur(r, c, x):
                return jnp.einsum("nhk,nkwc,nvw->nhvc", r, x, c,
                                  precision=jax.lax.Precision.HIGHEST)

            x = images[examples]
            step = blur(row, col, x)
            along_sigma = (blur(row_next, col_next, x) - step) / grad_step
            grads = target_logit_grad(classifier, variables, step, targets[examples])
            return width_of[:, None, None, None] * along_sigma * grads

        return -evaluation_sum(contributions, steps, images.shape[0], chunk_size)

    return attribute


METHOD = Method(name="blur_ig", make=make, signed=True, stochastic=False, completeness=False,
                family="gradient")
