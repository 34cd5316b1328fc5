"""Occlusion sensitivity.

Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014.

A `window` patch (all channels) slides over the image with `stride`; for each position the
patch is set to `fill` and the drop of the target logit, `f(x) - f(x_occluded)`, is credited to
every pixel in the patch. A pixel's map value is the mean drop over the windows covering it,
the same in every channel. When the stride does not tile the image, one more window aligned
to the far edge is added, so every pixel is covered. All (position, example) pairs run as
batched forward passes, `chunk_size` occluded images per pass.

Options:
    window: Patch size, an int or `(height, width)`.
    stride: Step between patches, an int or `(height, width)`; None uses `window`.
    fill: Value put in the patch: a scalar or an array broadcastable to one image `(H, W, C)`.
    chunk_size: Occluded images (window position x example pairs) per forward pass; bounds
        memory by `chunk_size` images whatever N. None: 64 per CPU core (up to 8 cores), 4,096
        on accelerators.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from attribution._checks import image_like, positive_int
from attribution._chunked import chunk_size_option, evaluation_sum
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method


def _pair(value: Any, name: str) -> tuple[int, int]:
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or (height, width); got {value!r}.")
    return positive_int(pair[0], name), positive_int(pair[1], name)


def _starts(size: int, window: int, stride: int) -> np.ndarray:
    """Window start positions along one axis, the last one flush with the far edge."""
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] + window < size:
        starts.append(size - window)
    return np.asarray(starts, np.int32)


def make(classifier: Classifier, *, window: int | tuple[int, int] = 4,
         stride: int | tuple[int, int] | None = None, fill: ArrayLike = 0.0,
         chunk_size: int | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: If `window` does not fit in the image, `window`, `stride` or `chunk_size`
            is not positive (`chunk_size` may be None), or `fill` does not broadcast to one
            image.
    """
    height, width, _ = classifier.input_shape
    wh, ww = _pair(window, "window")
    if wh > height or ww > width:
        raise ValueError(f"window {(wh, ww)} must fit in the image {(height, width)}.")
    sh, sw = _pair(window if stride is None else stride, "stride")
    chunk_size = chunk_size_option(chunk_size)
    fill_image = image_like(fill, classifier.input_shape, "fill")
    ys, xs = _starts(height, wh, sh), _starts(width, ww, sw)
    corners = np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1).reshape(-1, 2)  # [P, 2]
    patches = np.zeros((len(corners), height, width), np.float32)
    for patch, (y, x) in zip(patches, corners, strict=True):
        patch[y:y + wh, x:x + ww] = 1
    coverage = patches.sum(axis=0)

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        del key
        clean = classifier.target_logit(variables, images, targets)  # [N]
        patch_table = jnp.asarray(patches, images.dtype)
        filled = jnp.asarray(fill_image, images.dtype)

        def drops(points: jax.Array, examples: jax.Array) -> jax.Array:
            patch = patch_table[points][..., None] > 0  # [c, H, W, 1]
            occluded = jnp.where(patch, filled, images[examples])  # [c, H, W, C]
            drop = clean[examples] - classifier.target_logit(variables, occluded,
                                                             targets[examples])  # [c]
            # Each evaluation's drop lands in its (example, position) cell; patches come later.
            return drop[:, None] * jax.nn.one_hot(points, len(corners), dtype=drop.dtype)

        table = evaluation_sum(drops, len(corners), images.shape[0], chunk_size,
                               max_lanes=1)  # [N, P]
        total = jnp.einsum("np,phw->nhw", table, patch_table,
                           precision=jax.lax.Precision.HIGHEST)
        mean_drop = total / jnp.asarray(coverage, images.dtype)
        return jnp.broadcast_to(mean_drop[..., None], images.shape)

    return attribute


METHOD = Method(name="occlusion", make=make, signed=True, stochastic=False, completeness=False,
                family="perturbation")
