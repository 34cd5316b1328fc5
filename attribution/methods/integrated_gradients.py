"""Integrated gradients.

Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017.

The map is `(x - baseline) * mean_k grad f(baseline + a_k (x - baseline))`, a Riemann sum of the
path integral with the midpoint rule `a_k = (k + 1/2) / steps`: its completeness gap
`|sum(map) - (f(x) - f(baseline))|` is several times smaller than averaging `linspace(0, 1)`
at the same number of steps. `f` is the target class logit.

Options:
    steps: Number of points on the straight path from the baseline to the input.
    baseline: A scalar or an array broadcastable to one image `(H, W, C)`; 0.0 is black.
    chunk_size: Path points evaluated per batched pass; bounds memory at
        `chunk_size * N` images.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from numpy.typing import ArrayLike

from attribution._checks import image_like, positive_int
from attribution._chunked import chunked_sum, folded_grad
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method


def make(classifier: Classifier, *, steps: int = 64, baseline: ArrayLike = 0.0,
         chunk_size: int = 16) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: If `steps` or `chunk_size` is not a positive int, or `baseline` does not
            broadcast to one image.
    """
    steps = positive_int(steps, "steps")
    chunk_size = positive_int(chunk_size, "chunk_size")
    base = image_like(baseline, classifier.input_shape, "baseline")

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        del key
        start = jnp.asarray(base, images.dtype)
        delta = images - start

        def chunk_grads(k: jax.Array) -> jax.Array:
            alphas = (k.astype(images.dtype) + 0.5) / steps
            path = start + alphas[:, None, None, None, None] * delta  # [c, N, H, W, C]
            return jnp.sum(folded_grad(classifier, variables, path, targets), axis=0)

        return delta * (chunked_sum(chunk_grads, steps, chunk_size) / steps)

    return attribute


METHOD = Method(
    name="integrated_gradients", make=make, signed=True, stochastic=False, completeness=True
)
