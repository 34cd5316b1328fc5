"""Square patches as the interpretable features of the perturbation methods.

Feature ablation, KernelSHAP and LIME switch whole patches on (the image's pixels) or off (a
fill value); a map gives every pixel its patch's value. Patches tile the image from the top
left corner; the last row and column of patches are cut short where the image size is not a
multiple of the patch size.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from attribution._checks import positive_int


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


def masked(images: jax.Array, coalitions: jax.Array, index: np.ndarray, fill: jax.Array
           ) -> jax.Array:
    """Images `[c, H, W, C]` with the patches off in `coalitions` `[c, P]` (0 / 1) set to `fill`."""
    on = coalitions[:, jnp.asarray(index)]  # [c, H, W]
    return jnp.where(on[..., None] > 0, images, fill)


def to_pixels(values: jax.Array, index: np.ndarray, channels: int) -> jax.Array:
    """Per-patch values `[N, P]` as maps `[N, H, W, C]` (each pixel its patch's value)."""
    maps = values[:, jnp.asarray(index)]
    return jnp.broadcast_to(maps[..., None], (*maps.shape, channels))
