"""Superpixels: image segments for XRAI and for KernelSHAP / LIME on superpixels.

SLIC (Achanta et al., "SLIC Superpixels Compared to State-of-the-Art Superpixel Methods",
TPAMI 2012), written in JAX so that segmentation runs inside the methods' jitted programs,
batched over images: k-means over pixels described by their position and their values, started
from a grid of centres `size` pixels apart, each pixel compared with the centres within
`2 * size` of it (SLIC's search window). The distance is

    sum_c (x_c - centre_c)^2 / channels + (compactness * spatial distance / size)^2

with each image's values rescaled to [0, 1] first, so `compactness` weighs a grid step against
the full intensity range. It differs from scikit-image's `slic` in three documented ways: no
CIELAB conversion (digits are one channel), a fixed number of iterations, and no connectivity
post-processing (a segment may come out in several pieces; a centre that loses every pixel leaves
an empty segment, which the methods skip). PAIR saliency's XRAI segments with Felzenszwalb's graph
method on host, which cannot be jitted; `tests/attribution/test_segmentation.py` checks that
these segments follow edges as well.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from attribution._checks import positive_int

ITERATIONS = 10
OUTSIDE_WINDOW = 1e6  # Added to the distance of a centre outside the search window.


def grid_size(input_shape: tuple[int, ...], size: int) -> int:
    """The number of segments (grid centres) of one image of `input_shape` `(H, W, C)`."""
    return -(-input_shape[0] // size) * -(-input_shape[1] // size)


def check_sizes(sizes: Sequence[int] | int, input_shape: tuple[int, ...], name: str
                ) -> tuple[int, ...]:
    """`sizes` (one or several grid steps in pixels) validated against the image."""
    values = (sizes,) if isinstance(sizes, int) and not isinstance(sizes, bool) else sizes
    try:
        values = tuple(positive_int(v, name) for v in values)
    except TypeError:
        raise ValueError(f"{name} must be an int or a sequence of ints; got {sizes!r}.") from None
    if not values:
        raise ValueError(f"{name} must name at least one size; got {sizes!r}.")
    for v in values:
        if v > max(input_shape[:2]):
            raise ValueError(f"{name}: a superpixel size of {v} is larger than the image "
                             f"{tuple(input_shape[:2])}.")
    return values


def slic(images: jax.Array, *, size: int, compactness: float = 0.3,
         iterations: int = ITERATIONS) -> jax.Array:
    """Superpixel labels int32 `[N, H, W]` in `[0, K)`, K = `grid_size(images.shape[1:], size)`.

    Args:
        images: `[N, H, W, C]`.
        size: The grid step of the initial centres, in pixels (about a segment's side).
        compactness: Weight of the spatial distance (one grid step) against the intensity
            distance (the image's range): larger gives squarer segments.
        iterations: k-means iterations.
    """
    return jax.vmap(lambda image: _slic_one(image, size, compactness, iterations))(images)


def _slic_one(image: jax.Array, size: int, compactness: float, iterations: int) -> jax.Array:
    height, width, channels = image.shape
    low, high = jnp.min(image), jnp.max(image)
    values = ((image - low) / jnp.maximum(high - low, 1e-12)).reshape(-1, channels)
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    position = jnp.asarray(np.stack([rows.ravel(), cols.ravel()], 1), jnp.float32)  # [HW, 2]
    grid_rows = np.minimum(size // 2 + size * np.arange(-(-height // size)), height - 1)
    grid_cols = np.minimum(size // 2 + size * np.arange(-(-width // size)), width - 1)
    start = np.stack(np.meshgrid(grid_rows, grid_cols, indexing="ij"), -1).reshape(-1, 2)
    centre_position = jnp.asarray(start, jnp.float32)  # [K, 2]
    centre_values = values[start[:, 0] * width + start[:, 1]]  # [K, C]
    spatial_weight = (compactness / size) ** 2

    def assign(centre_position: jax.Array, centre_values: jax.Array) -> jax.Array:
        offset = position[:, None, :] - centre_position[None, :, :]  # [HW, K, 2]
        spatial = jnp.sum(offset**2, -1)
        intensity = jnp.mean((values[:, None, :] - centre_values[None, :, :]) ** 2, -1)
        outside = jnp.any(jnp.abs(offset) > 2 * size, -1)
        distance = intensity + spatial_weight * spatial + OUTSIDE_WINDOW * outside
        return jnp.argmin(distance, axis=1)  # [HW]

    def update(_, centres: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        centre_position, centre_values = centres
        members = jax.nn.one_hot(assign(centre_position, centre_values), len(start))  # [HW, K]
        count = jnp.sum(members, 0)[:, None]
        keep = count == 0  # An empty cluster keeps its centre.
        mean_position = (members.T @ position) / jnp.maximum(count, 1)
        mean_values = (members.T @ values) / jnp.maximum(count, 1)
        return (jnp.where(keep, centre_position, mean_position),
                jnp.where(keep, centre_values, mean_values))

    centres = jax.lax.fori_loop(0, iterations, update, (centre_position, centre_values))
    return assign(*centres).reshape(height, width).astype(jnp.int32)


def segment_masks(labels: jax.Array, count: int) -> jax.Array:
    """One boolean mask per label: `[N, count, H, W]` from labels `[N, H, W]`."""
    return labels[:, None, :, :] == jnp.arange(count)[None, :, None, None]


def dilate(masks: jax.Array, radius: int) -> jax.Array:
    """Boolean masks `[..., H, W]` grown by a disk of `radius` pixels (0: unchanged)."""
    if radius == 0:
        return masks
    taps = np.arange(-radius, radius + 1)
    disk = (taps[:, None] ** 2 + taps[None, :] ** 2 <= radius**2).astype(np.float32)
    shape = masks.shape
    flat = masks.reshape(-1, 1, *shape[-2:]).astype(jnp.float32)
    grown = jax.lax.conv_general_dilated(flat, jnp.asarray(disk)[None, None], (1, 1),
                                         [(radius, radius), (radius, radius)])
    return (grown > 0.5).reshape(shape)
