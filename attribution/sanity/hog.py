"""Histograms of oriented gradients (Dalal & Triggs, CVPR 2005) of attribution maps, in JAX.

Adebayo et al. (2018) compare maps by the rank correlation of their HOG features as well.
This follows `skimage.feature.hog` with its defaults (9 orientations over [0, 180), 8x8-pixel
cells, blocks of 3x3 cells, L2-Hys block normalization, feature vector in skimage's order):
central-difference gradients (zero on the border rows and columns), each pixel's magnitude
voting into the bin of its orientation, averaged over the cell.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

ORIENTATIONS = 9
CELL = 8
BLOCK = 3
_EPS = 1e-5


def _gradients(images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Central differences of `[N, H, W]` along rows and columns, zero on the border."""
    g_row = jnp.zeros_like(images).at[:, 1:-1, :].set(images[:, 2:, :] - images[:, :-2, :])
    g_col = jnp.zeros_like(images).at[:, :, 1:-1].set(images[:, :, 2:] - images[:, :, :-2])
    return g_row, g_col


def _l2_hys(block: jax.Array) -> jax.Array:
    """L2 normalization, clipping at 0.2, and L2 again, over the last three axes."""
    axes = (-3, -2, -1)
    out = block / jnp.sqrt(jnp.sum(block**2, axis=axes, keepdims=True) + _EPS**2)
    out = jnp.minimum(out, 0.2)
    return out / jnp.sqrt(jnp.sum(out**2, axis=axes, keepdims=True) + _EPS**2)


def hog_features(images: jax.Array) -> jax.Array:
    """HOG feature vectors of grayscale images.

    Args:
        images: float `[N, H, W]` with H, W >= 24 (one block of 3x3 cells of 8x8 pixels).

    Returns:
        float32 `[N, blocks_h * blocks_w * 3 * 3 * 9]`, as `skimage.feature.hog(image)`
        returns per image (81 features for a 28x28 digit).

    Raises:
        ValueError: If the images are smaller than one block.
    """
    n, height, width = images.shape
    cells_h, cells_w = height // CELL, width // CELL
    if cells_h < BLOCK or cells_w < BLOCK:
        raise ValueError(f"HOG needs images of at least {BLOCK * CELL}x{BLOCK * CELL} pixels; "
                         f"got {height}x{width}.")
    g_row, g_col = _gradients(images.astype(jnp.float32))
    magnitude = jnp.hypot(g_row, g_col)
    orientation = jnp.rad2deg(jnp.arctan2(g_row, g_col)) % 180
    # Bin i holds [20 i, 20 (i + 1)) degrees: count the bin edges at or below the angle.
    edges = (180.0 / ORIENTATIONS) * jnp.arange(1, ORIENTATIONS, dtype=jnp.float32)
    bins = jnp.sum(orientation[..., None] >= edges, axis=-1)
    votes = magnitude[..., None] * jax.nn.one_hot(bins, ORIENTATIONS, dtype=jnp.float32)
    # Cells tile the image from the top-left corner; leftover rows and columns are unused.
    votes = votes[:, : cells_h * CELL, : cells_w * CELL]
    cells = votes.reshape(n, cells_h, CELL, cells_w, CELL, ORIENTATIONS).mean(axis=(2, 4))
    blocks = jnp.stack([
        jnp.stack([cells[:, r:r + BLOCK, c:c + BLOCK] for c in range(cells_w - BLOCK + 1)],
                  axis=1)
        for r in range(cells_h - BLOCK + 1)
    ], axis=1)  # [N, blocks_h, blocks_w, BLOCK, BLOCK, ORIENTATIONS]
    return _l2_hys(blocks).reshape(n, -1)
