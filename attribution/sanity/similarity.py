"""Similarity between two batches of attribution maps, one number per example.

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim, "Sanity Checks for Saliency Maps",
NeurIPS 2018, compare a trained model's maps with a randomized model's by Spearman rank
correlation of absolute and of signed maps, SSIM, and rank correlation of HOG features.

Every function takes maps `a, b` float `[N, H, W, C]`, sums the channels (one map per
example), and returns float32 `[N]`. All are pure and jittable. A map with no variation
(e.g. all zeros) has no ranks to correlate: its Spearman correlation is defined as 0 here
(scipy returns nan), so averages over probes stay finite.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

from attribution.sanity.hog import hog_features

SimilarityFn = Callable[[jax.Array, jax.Array], jax.Array]
"""`(a [N, H, W, C], b [N, H, W, C]) -> similarity float32 [N]`."""

def _flat(maps: jax.Array) -> jax.Array:
    """`[N, H, W, C]` -> channel sums, flattened `[N, H * W]` float32."""
    if maps.ndim != 4:
        raise ValueError(f"maps must be [N, H, W, C]; got shape {maps.shape}.")
    return jnp.sum(maps.astype(jnp.float32), axis=-1).reshape(maps.shape[0], -1)


def _order_keys(x: jax.Array) -> jax.Array:
    """Integers in the order of `x`'s values, equal where they compare equal.

    Floats become their bit patterns, sign-folded (-0.0 as 0.0; every NaN as one NaN, above
    +inf, as `jnp.sort` places it); integers stay themselves. Bitwise not (`~`) then reverses
    the order exactly, with no overflow, where negating a float would move the NaNs.
    """
    if not jnp.issubdtype(x.dtype, jnp.floating):
        return x
    x = jnp.where(x == 0, jnp.zeros_like(x), jnp.where(jnp.isnan(x), jnp.nan, x))
    int_type = {16: jnp.int16, 32: jnp.int32, 64: jnp.int64}[jnp.finfo(x.dtype).bits]
    bits = lax.bitcast_convert_type(x, int_type)
    return jnp.where(bits < 0, bits ^ jnp.iinfo(int_type).max, bits)


def average_ranks(x: jax.Array) -> jax.Array:
    """Ranks `1 .. M` of each row of `x [N, M]`, ties sharing their average rank.

    Equal to `scipy.stats.rankdata(row, method="average")` per row: a value's ranks span
    from (number of smaller values + 1) to (number of values <= it). NaNs rank above every
    number, tied with each other.
    """
    # Both counts come from one binary search (a loop XLA compiles into the program once per
    # search: the sanity checks compile 12 fewer of them): the values <= v are those not
    # below ~v in the order-reversed row, which is the sorted row reversed.
    keys = _order_keys(x)
    s = jnp.sort(keys, axis=1)
    below = jax.vmap(lambda row, values: jnp.searchsorted(row, values, side="left"))(
        jnp.concatenate([s, ~s[:, ::-1]]), jnp.concatenate([keys, ~keys]))
    lo, above = jnp.split(below, 2)
    hi = x.shape[1] - above
    return (lo + hi + 1).astype(jnp.float32) / 2


def spearman(x: jax.Array, y: jax.Array) -> jax.Array:
    """Spearman rank correlation per row of `x, y [N, M]` (average ranks for ties) -> `[N]`.

    The Pearson correlation of the average ranks, as `scipy.stats.spearmanr`; 0 where a row
    is constant.
    """
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape [N, M]; got {x.shape} and {y.shape}.")
    # Average ranks always sum to M (M + 1) / 2, so centering is exact: a constant row
    # becomes exact zeros rather than rounding noise.
    center = (x.shape[1] + 1) / 2
    rx, ry = jnp.split(average_ranks(jnp.concatenate([x, y])) - center, 2)
    denom = jnp.sqrt(jnp.sum(rx * rx, axis=1) * jnp.sum(ry * ry, axis=1))
    ok = denom > 0
    return jnp.where(ok, jnp.sum(rx * ry, axis=1) / jnp.where(ok, denom, 1.0), 0.0)


def spearman_abs(a: jax.Array, b: jax.Array) -> jax.Array:
    """Spearman rank correlation of absolute maps.

    The paper divides each absolute map by its max first; that does not change the ranks,
    and in float32 the division can round distinct values into ties, so it is skipped.

    Args:
        a, b: Maps `[N, H, W, C]`; channels are summed first.

    Returns:
        float32 `[N]` in [-1, 1]; 1 for maps with the same ordering of |values|.
    """
    return spearman(jnp.abs(_flat(a)), jnp.abs(_flat(b)))


def spearman_signed(a: jax.Array, b: jax.Array) -> jax.Array:
    """Spearman rank correlation of signed maps.

    The paper's division by the max |value| does not change the ranks (see `spearman_abs`).

    Args:
        a, b: Maps `[N, H, W, C]`; channels are summed first.

    Returns:
        float32 `[N]` in [-1, 1].
    """
    return spearman(_flat(a), _flat(b))


_SSIM_WINDOW = 7
_SSIM_K1, _SSIM_K2 = 0.01, 0.03


def _minmax(x: jax.Array) -> jax.Array:
    """Scales each map `[N, H, W]` to [0, 1] (a constant map becomes zeros)."""
    lo = jnp.min(x, axis=(1, 2), keepdims=True)
    span = jnp.max(x, axis=(1, 2), keepdims=True) - lo
    return (x - lo) / jnp.where(span > 0, span, 1.0)


def _box_mean(x: jax.Array) -> jax.Array:
    """Mean over each full 7x7 window of `[N, H, W]` -> `[N, H - 6, W - 6]`."""
    w = _SSIM_WINDOW
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, w, w), (1, 1, 1), "VALID")
    return total / (w * w)


def ssim(a: jax.Array, b: jax.Array) -> jax.Array:
    """Mean structural similarity (Wang et al. 2004) of min-max normalized maps.

    Follows `skimage.metrics.structural_similarity` with its defaults for 2-D float images
    and `data_range=1`: 7x7 uniform windows, K1 = 0.01, K2 = 0.03, sample (co)variances
    (times 49 / 48), averaged over the windows that lie fully inside the image (skimage
    filters the whole image, then crops the 3-pixel border, which leaves the same windows).

    Args:
        a, b: Maps `[N, H, W, C]` with H, W >= 7; channels are summed first.

    Returns:
        float32 `[N]`; 1 for identical maps.
    """
    if a.ndim != 4 or min(a.shape[1:3]) < _SSIM_WINDOW:
        raise ValueError(f"ssim needs maps [N, H, W, C] with H, W >= {_SSIM_WINDOW}; "
                         f"got shape {a.shape}.")
    x = _minmax(jnp.sum(a.astype(jnp.float32), axis=-1))
    y = _minmax(jnp.sum(b.astype(jnp.float32), axis=-1))
    ux, uy = _box_mean(x), _box_mean(y)
    # Centered second moments: E[(x - ux)^2] would need per-window means; the raw-moment
    # form is what skimage computes, and values in [0, 1] keep it accurate in float32.
    norm = _SSIM_WINDOW**2 / (_SSIM_WINDOW**2 - 1)
    vx = norm * (_box_mean(x * x) - ux * ux)
    vy = norm * (_box_mean(y * y) - uy * uy)
    vxy = norm * (_box_mean(x * y) - ux * uy)
    c1, c2 = _SSIM_K1**2, _SSIM_K2**2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return jnp.mean(s, axis=(1, 2))


def hog_spearman(a: jax.Array, b: jax.Array) -> jax.Array:
    """Spearman rank correlation of the HOG features of the min-max normalized maps.

    Signed maps (no absolute value), as the paper does for SSIM and HOG; HOG features follow
    `skimage.feature.hog`'s defaults (see `attribution.sanity.hog`).

    Args:
        a, b: Maps `[N, H, W, C]` with H, W >= 24; channels are summed first.

    Returns:
        float32 `[N]` in [-1, 1].
    """
    x = _minmax(jnp.sum(a.astype(jnp.float32), axis=-1))
    y = _minmax(jnp.sum(b.astype(jnp.float32), axis=-1))
    return spearman(hog_features(x), hog_features(y))


def l1_similarity(a: jax.Array, b: jax.Array) -> jax.Array:
    """`1 - sum|a - b| / (sum|a| + sum|b|)`: 1 only for equal maps, 0 for disjoint or opposite.

    Unlike rank correlations it sees scale: a map doubled scores 2/3. Used for input
    invariance, where the question is whether the attribution values themselves change.

    Args:
        a, b: Maps `[N, H, W, C]`; channels are summed first.

    Returns:
        float32 `[N]` in [0, 1] (1 for two all-zero maps).
    """
    x, y = _flat(a), _flat(b)
    total = jnp.sum(jnp.abs(x), axis=1) + jnp.sum(jnp.abs(y), axis=1)
    diff = jnp.sum(jnp.abs(x - y), axis=1)
    return jnp.where(total > 0, 1.0 - diff / jnp.where(total > 0, total, 1.0), 1.0)


SIMILARITIES: dict[str, SimilarityFn] = {
    "spearman_abs": spearman_abs,
    "spearman_signed": spearman_signed,
    "ssim": ssim,
    "hog_spearman": hog_spearman,
    "l1": l1_similarity,
}
"""Similarity name -> function `(a [N, H, W, C], b [N, H, W, C]) -> [N]`."""


def get_similarity(name: str) -> SimilarityFn:
    """Returns the similarity function named `name`.

    Raises:
        ValueError: If `name` is not a key of `SIMILARITIES`.
    """
    if name not in SIMILARITIES:
        raise ValueError(f"Unknown similarity {name!r}; valid similarities: "
                         f"{', '.join(SIMILARITIES)}.")
    return SIMILARITIES[name]
