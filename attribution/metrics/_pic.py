"""What SIC and AIC share: PAIR saliency's performance information curves (PIC).

Kapishnikov, Bolukbasi, Viégas & Terry, "XRAI: Better Attributions Through Regions", ICCV 2019
(PAIR saliency's `saliency.metrics.compute_pic_metric`). A "bokeh" image keeps the pixels a map
ranks highest (and a fixed random 1% of pixels plus the corners) and fills the rest by
interpolating from the kept ones; the model's output on it is plotted against how much
information it holds, both normalized between the fully blurred image (the random pixels only)
and the original. The curve runs through (0, 0) and (1, 1), the output kept monotone (the
running maximum), and its area is the score: a good map restores the model's output with
little information. A probe is skipped (NaN) when the model's output on the original is below
`min_pred`, or when the fully blurred image does not hold less information or a lower output
than the original, as PAIR skips it.

Two parts differ from PAIR, which runs on host: the interpolation is the harmonic one of
`_imputation` (each filled pixel the weighted mean of its neighbours) where PAIR triangulates
(scipy's `griddata`, linear), and the information is estimated as the size a lossless
predictive coder needs, the order-0 entropy (bits) of the residuals of JPEG-LS's median edge
detector prediction on the image quantized to 256 levels, where PAIR compresses it to
lossless WebP and counts the bytes. Both are in the jitted program, batched over the probes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from attribution.metrics._common import check_number
from attribution.metrics._imputation import impute
from attribution.metrics.complexity import entropy

THRESHOLDS = (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.07, 0.10, 0.13, 0.21, 0.34, 0.5, 0.75)
RANDOM_FRACTION = 0.01
CURVE_POINTS = 1000
LEVELS = 256


def check_thresholds(values: Sequence[float]) -> tuple[float, ...]:
    try:
        out = tuple(check_number(v, "thresholds", low=0.0, high=1.0, low_open=True)
                    for v in values)
    except TypeError:
        raise ValueError(f"thresholds must be numbers in (0, 1]; got {values!r}.") from None
    if not out:
        raise ValueError("thresholds must name at least one fraction of pixels.")
    return out


def information(images: jax.Array, low: jax.Array, high: jax.Array) -> jax.Array:
    """Estimated bits to store each image `[N, H, W, C]` losslessly: the order-0 entropy of
    the median-edge-detector residuals of the image quantized to 256 levels between `low` and
    `high` `[N, 1, 1, 1]` (the original image's range, as PAIR's uint8 images), times its size.
    """
    scale = jnp.where(high > low, high - low, 1.0)
    q = jnp.round(jnp.clip((images - low) / scale, 0.0, 1.0) * (LEVELS - 1))
    padded = jnp.pad(q, ((0, 0), (1, 0), (1, 0), (0, 0)))
    a, b, c = padded[:, 1:, :-1], padded[:, :-1, 1:], padded[:, :-1, :-1]  # left, up, up-left
    predicted = jnp.where(c >= jnp.maximum(a, b), jnp.minimum(a, b),
                          jnp.where(c <= jnp.minimum(a, b), jnp.maximum(a, b), a + b - c))
    residual = (q - predicted).reshape(images.shape[0], -1).astype(jnp.int32) + LEVELS - 1
    counts = jax.vmap(lambda r: jnp.bincount(r, length=2 * LEVELS - 1))(residual)
    return entropy(counts) / jnp.log(2.0) * residual.shape[1]  # Bits per pixel x pixels.


def random_masks(keys: jax.Array, height: int, width: int) -> jax.Array:
    """bool `[N, H, W]`: 1% of the pixels drawn from each key, and the four corners."""
    count = int(height * width * RANDOM_FRACTION)

    def one(key):
        rank = jnp.argsort(jnp.argsort(jax.random.uniform(key, (height * width,))))
        return (rank < count).reshape(height, width)

    corners = np.zeros((height, width), bool)
    corners[[0, 0, -1, -1], [0, -1, 0, -1]] = True
    return jax.vmap(one)(keys) | jnp.asarray(corners)


def bokeh(images: jax.Array, kept: jax.Array) -> jax.Array:
    """Images `[N, H, W, C]` with the pixels outside bool `kept` `[N, H, W]` interpolated."""
    channels = jnp.moveaxis(images, -1, 0)
    filled = jax.vmap(lambda c: impute(c, ~kept))(channels)
    return jnp.moveaxis(filled, 0, -1)


def curve_area(entropies: jax.Array, predictions: jax.Array) -> jax.Array:
    """PAIR's PIC area from normalized points `[N, T]` (the running max already taken)."""
    n = entropies.shape[0]
    xs = jnp.concatenate([entropies, jnp.zeros((n, 1)), jnp.ones((n, 1))], axis=1)
    ys = jnp.concatenate([predictions, jnp.zeros((n, 1)), jnp.ones((n, 1))], axis=1)
    order = jnp.argsort(xs, axis=1, stable=True)
    xs, ys = jnp.take_along_axis(xs, order, 1), jnp.take_along_axis(ys, order, 1)
    inner = jnp.linspace(0.0, 1.0, CURVE_POINTS, endpoint=False)
    grid = jnp.append(inner, 1.0)
    # PAIR appends the end point (1, 1) itself, whatever the points at x = 1 say.
    curve = jnp.concatenate([jax.vmap(lambda x, y: jnp.interp(inner, x, y))(xs, ys),
                             jnp.ones((n, 1))], axis=1)
    return jnp.sum((curve[:, 1:] + curve[:, :-1]) / 2 * jnp.diff(grid), axis=1)


def pic(output_of: Callable[[jax.Array], jax.Array], images: jax.Array, maps: jax.Array,
        keys: jax.Array, thresholds: Sequence[float], min_pred: float) -> jax.Array:
    """The PIC area per probe `[N]` (NaN where PAIR would skip the probe)."""
    n, height, width, _ = images.shape
    saliency = jnp.sum(maps, axis=-1).reshape(n, -1)
    random_kept = random_masks(keys, height, width)
    blurred = bokeh(images, random_kept)
    low = jnp.min(images, axis=(1, 2, 3), keepdims=True)
    high = jnp.max(images, axis=(1, 2, 3), keepdims=True)
    info_original, info_blurred = information(images, low, high), information(blurred, low, high)
    pred_original, pred_blurred = output_of(images), output_of(blurred)

    def point(threshold: jax.Array) -> tuple[jax.Array, jax.Array]:
        quantile = jnp.quantile(saliency, 1.0 - threshold, axis=1, keepdims=True)
        kept = (saliency >= quantile).reshape(n, height, width) | random_kept
        image = bokeh(images, kept)
        entropy = (information(image, low, high) - info_blurred) / (info_original - info_blurred)
        pred = (output_of(image) - pred_blurred) / (pred_original - pred_blurred)
        return jnp.clip(entropy, 0.0, 1.0), jnp.clip(pred, 0.0, 1.0)

    entropies, preds = jax.lax.map(point, jnp.asarray(thresholds, jnp.float32))  # [T, N]
    monotone = jax.lax.cummax(preds, axis=0)
    area = curve_area(entropies.T, monotone.T)
    valid = ((pred_original >= min_pred) & (info_blurred < info_original)
             & (pred_blurred < pred_original))
    return jnp.where(valid, area, jnp.nan)
