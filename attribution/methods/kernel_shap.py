"""KernelSHAP on square patches or superpixels.

Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions", NeurIPS 2017.

Shapley values of the patches (a patch present: its pixels; absent: `fill`), estimated as
Captum's `KernelShap` does: coalitions are drawn from the Shapley kernel's distribution (a size
k in 1..P-1 with probability proportional to (P - 1) / (k (P - k)), then k patches uniformly),
so every sample has weight 1, and the target logit is fit by least squares with an intercept.
For a model that is linear in the patches, f = b + sum_p c_p z_p, the fit is exact: each
patch gets c_p whatever the samples (given P + 1 independent ones). Sample `s` of example `n`
draws from example `n`'s key alone.

Options:
    patch: Patch size, an int or `(height, width)`; for superpixels, SLIC's grid step.
    features: "patches" (square) or "superpixels" (each image's SLIC segments, see
        `attribution.segmentation`; about one per `patch` x `patch` pixels).
    num_samples: Coalitions per example (forward passes). With fewer than the number of patches
        + 1 the fit is underdetermined, and its small ridge picks the least-norm solution.
    fill: Value of an absent patch: a scalar or an array broadcastable to one image.
    chunk_size: Masked images per forward pass; None: 64 per CPU core (up to 8), 4,096 on
        accelerators.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from attribution._checks import image_like, positive_int
from attribution._chunked import chunk_size_option
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method
from attribution.methods import _surrogate
from attribution.methods._patches import feature_index, to_pixels

RIDGE = 1e-6  # Relative; keeps the normal equations solvable in float32.


def make(classifier: Classifier, *, patch: int | tuple[int, int] = 4,
         features: str = "patches", num_samples: int = 256,
         fill: ArrayLike = 0.0, chunk_size: int | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: For unknown `features`, a patch that does not fit or gives one patch, a
            non-positive `num_samples`, a bad `chunk_size`, or a `fill` that does not broadcast.
    """
    count, index_of = feature_index(features, patch, classifier.input_shape)
    num_samples = positive_int(num_samples, "num_samples")
    if count < 2:
        raise ValueError(f"KernelSHAP needs at least 2 patches; patch {patch!r} gives 1.")
    fill_image = image_like(fill, classifier.input_shape, "fill")
    chunk_size = chunk_size_option(chunk_size)
    sizes = np.arange(1, count)
    size_logits = jnp.asarray(np.log((count - 1) / (sizes * (count - sizes))), jnp.float32)

    def draw(key: jax.Array, sample: jax.Array) -> jax.Array:
        size_key, order_key = jax.random.split(jax.random.fold_in(key, sample))
        size = 1 + jax.random.categorical(size_key, size_logits)
        ranks = jnp.argsort(jnp.argsort(jax.random.uniform(order_key, (count,))))
        return (ranks < size).astype(jnp.float32)

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        index = index_of(images)
        phi = _surrogate.fit(classifier, variables, images, targets, key, index=index,
                             count=count,
                             fill=jnp.asarray(fill_image, images.dtype),
                             num_samples=num_samples, draw=draw,
                             weight=lambda z: jnp.ones((), z.dtype), ridge=RIDGE,
                             chunk_size=chunk_size)
        return to_pixels(phi, index, images.shape[-1]).astype(jnp.float32)

    return attribute


METHOD = Method(name="kernel_shap", make=make, signed=True, stochastic=True, completeness=False,
                family="perturbation")
