"""LIME on square patches or superpixels.

Ribeiro, Singh & Guestrin, "'Why Should I Trust You?': Explaining the Predictions of Any
Classifier", KDD 2016.

A local linear surrogate of the target logit over the patches (present: the image's pixels;
absent: `fill`). As the `lime` package's image explainer: the first sample keeps every patch,
the others switch each patch on with probability 1/2; a sample z is weighted by
sqrt(exp(-d^2 / width^2)) with d its cosine distance to the all-on vector, and the logit is fit
by ridge regression with an intercept (penalty `alpha` on the coefficients, in the units of the
weighted sum of squares). (Captum's `Lime` defaults differ: a Lasso surrogate and distances in
input space.) Each patch's coefficient is its pixels' value. Sample `s` of example `n` draws
from example `n`'s key alone.

Options:
    patch: Patch size, an int or `(height, width)`; for superpixels, SLIC's grid step.
    features: "patches" (square) or "superpixels" (each image's SLIC segments, see
        `attribution.segmentation`; about one per `patch` x `patch` pixels).
    num_samples: Samples per example (forward passes).
    kernel_width: Width of the exponential kernel on the cosine distance.
    alpha: Ridge penalty.
    fill: Value of an absent patch: a scalar or an array broadcastable to one image.
    chunk_size: Masked images per forward pass; None: 64 per CPU core (up to 8), 4,096 on
        accelerators.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from numpy.typing import ArrayLike

from attribution._checks import image_like, positive_int
from attribution._chunked import chunk_size_option
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method
from attribution.methods import _surrogate
from attribution.methods._patches import feature_index, to_pixels


def _positive_number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"{name} must be a number > 0; got {value!r}.")
    return float(value)


def make(classifier: Classifier, *, patch: int | tuple[int, int] = 4,
         features: str = "patches", num_samples: int = 256,
         kernel_width: float = 0.25, alpha: float = 1.0, fill: ArrayLike = 0.0,
         chunk_size: int | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: For unknown `features`, a patch that does not fit, a non-positive `num_samples`,
            `kernel_width` or `alpha`, a bad `chunk_size`, or a `fill` that does not broadcast.
    """
    count, index_of = feature_index(features, patch, classifier.input_shape)
    num_samples = positive_int(num_samples, "num_samples")
    width = _positive_number(kernel_width, "kernel_width")
    alpha = _positive_number(alpha, "alpha")
    fill_image = image_like(fill, classifier.input_shape, "fill")
    chunk_size = chunk_size_option(chunk_size)

    def draw(key: jax.Array, sample: jax.Array) -> jax.Array:
        z = jax.random.bernoulli(jax.random.fold_in(key, sample), 0.5, (count,))
        return jnp.where(sample == 0, 1.0, z.astype(jnp.float32))

    def weight(z: jax.Array) -> jax.Array:
        distance = 1.0 - jnp.sqrt(jnp.sum(z) / count)  # Cosine distance to all-on.
        return jnp.sqrt(jnp.exp(-jnp.square(distance) / width**2))

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        # The ridge is given relative to the mean weight; LIME's alpha is absolute.
        index = index_of(images)
        phi = _surrogate.fit(classifier, variables, images, targets, key, index=index,
                             count=count,
                             fill=jnp.asarray(fill_image, images.dtype),
                             num_samples=num_samples, draw=draw, weight=weight,
                             ridge=alpha, chunk_size=chunk_size, relative_ridge=False)
        return to_pixels(phi, index, images.shape[-1]).astype(jnp.float32)

    return attribute


METHOD = Method(name="lime", make=make, signed=True, stochastic=True, completeness=False,
                family="perturbation")
