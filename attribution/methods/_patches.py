"""Square patches or superpixels as the interpretable features of the perturbation methods.

Feature ablation, KernelSHAP and LIME switch whole patches on (the image's pixels) or off (a
fill value); a map gives every pixel its patch's value. Patches tile the image from the top
left corner; the last row and column of patches are cut short where the image size is not a
multiple of the patch size. KernelSHAP and LIME can use each image's SLIC superpixels instead
(`attribution.segmentation`, grid step `patch`), as the `lime` package and SHAP's image examples
do; an index is then per image, `[N, H, W]`, and a superpixel left empty by SLIC is a feature
that changes nothing (its coefficient is the ridge's zero).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from attribution import segmentation
from attribution._checks import positive_int

FEATURES = ("patches", "superpixels")


def patch_pair(value: Any, input_shape: tuple[int, int, int], name: str = "patch"
               ) -> tuple[int, int]:
    """`value` (an int or `(height, width)`) as two ints that fit in the image."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or (height, width); got {value!r}.")
    pair = positive_int(pair[0], name), positive_int(pair[1], name)
    if pair[0] > input_shape[0] or pair[1] > input_shape[1]:
        raise ValueError(f"{name} {pair} must fit in the image {tuple(input_shape[:2])}.")
    return pair


def patch_index(input_shape: tuple[int, int, int], patch: tuple[int, int]) -> np.ndarray:
    """int32 `[H, W]`: the patch of each pixel, row-major over the patch grid."""
    height, width, _ = input_shape
    rows = np.arange(height) // patch[0]
    cols = np.arange(width) // patch[1]
    per_row = -(-width // patch[1])
    return (rows[:, None] * per_row + cols[None, :]).astype(np.int32)


def num_patches(index: np.ndarray) -> int:
    return int(index.max()) + 1


def feature_index(features: str, patch: Any, input_shape: tuple[int, int, int]
                  ) -> tuple[int, Callable[[jax.Array], jax.Array]]:
    """(P, `index_of(images [N, H, W, C]) -> int32 [N, H, W]`): each pixel's feature.

    Raises:
        ValueError: For unknown `features` or a `patch` that does not fit the image.
    """
    if features == "patches":
        index = patch_index(input_shape, patch_pair(patch, input_shape))
        return num_patches(index), lambda images: jnp.broadcast_to(
            jnp.asarray(index), (images.shape[0], *index.shape))
    if features == "superpixels":
        if isinstance(patch, (tuple, list)):
            raise ValueError(f"Superpixels take one grid step as patch; got {patch!r}.")
        (size,) = segmentation.check_sizes(patch, input_shape, "patch")
        count = segmentation.grid_size(input_shape, size)
        return count, lambda images: segmentation.slic(images, size=size)
    raise ValueError(f"Unknown features {features!r}; valid features: {', '.join(FEATURES)}.")


def _per_pixel(values: jax.Array, index: np.ndarray | jax.Array) -> jax.Array:
    """`values` `[c, P]` at each pixel's feature: `[c, H, W]`; index `[H, W]` or `[c, H, W]`."""
    if index.ndim == 2:
        return values[:, jnp.asarray(index)]
    flat = jnp.take_along_axis(values, index.reshape(index.shape[0], -1), axis=1)
    return flat.reshape(index.shape)


def masked(images: jax.Array, coalitions: jax.Array, index: np.ndarray | jax.Array,
           fill: jax.Array) -> jax.Array:
    """Images `[c, H, W, C]` with the features off in `coalitions` `[c, P]` (0 / 1) set to
    `fill`; `index` one `[H, W]` for all or `[c, H, W]` per image."""
    on = _per_pixel(coalitions, index)  # [c, H, W]
    return jnp.where(on[..., None] > 0, images, fill)


def to_pixels(values: jax.Array, index: np.ndarray | jax.Array, channels: int) -> jax.Array:
    """Per-feature values `[N, P]` as maps `[N, H, W, C]` (each pixel its feature's value)."""
    maps = _per_pixel(values, index)
    return jnp.broadcast_to(maps[..., None], (*maps.shape, channels))
