"""Feature ablation on square patches.

As Captum's `FeatureAblation` with a feature mask of square patches: each patch in turn is set
to `fill` (all channels), and the drop of the target logit, `f(x) - f(x with the patch
filled)`, is every pixel of that patch's value. Unlike occlusion, the patches do not overlap:
one forward pass per patch, and a model that is a sum of per-patch terms gets each patch's
exact contribution. All (patch, example) pairs run as batched forward passes.

Options:
    patch: Patch size, an int or `(height, width)`; patches tile the image from the top left.
    fill: Value of an ablated patch: a scalar or an array broadcastable to one image.
    chunk_size: Ablated images per forward pass; None: 64 per CPU core (up to 8), 4,096 on
        accelerators.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from numpy.typing import ArrayLike

from attribution._checks import image_like
from attribution._chunked import chunk_size_option, evaluation_sum
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method
from attribution.methods._patches import masked, num_patches, patch_index, patch_pair, to_pixels


def make(classifier: Classifier, *, patch: int | tuple[int, int] = 4, fill: ArrayLike = 0.0,
         chunk_size: int | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: For a patch that does not fit, a bad `chunk_size`, or a `fill` that does not
            broadcast to one image.
    """
    index = patch_index(classifier.input_shape, patch_pair(patch, classifier.input_shape))
    count = num_patches(index)
    fill_image = image_like(fill, classifier.input_shape, "fill")
    chunk_size = chunk_size_option(chunk_size)

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        del key
        clean = classifier.target_logit(variables, images, targets)
        filled = jnp.asarray(fill_image, images.dtype)

        def drops(points: jax.Array, examples: jax.Array) -> jax.Array:
            off = jax.nn.one_hot(points, count, dtype=images.dtype)  # [c, P]
            ablated = masked(images[examples], 1 - off, index, filled)
            drop = clean[examples] - classifier.target_logit(variables, ablated,
                                                             targets[examples])
            return drop[:, None] * off

        table = evaluation_sum(drops, count, images.shape[0], chunk_size, max_lanes=1)
        return to_pixels(table, index, images.shape[-1]).astype(jnp.float32)

    return attribute


METHOD = Method(name="feature_ablation", make=make, signed=True, stochastic=False,
                completeness=False, family="perturbation")
