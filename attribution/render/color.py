"""Colouring attribution maps: colormap lookup tables, heatmaps, and overlays on the digit.

Colormaps come from matplotlib's registry (no pyplot, no backend), sampled once into a
`[K, 3]` uint8 table. Signed maps use an odd-sized table so that zero hits the colormap's exact
centre: the neutral colour of a diverging map.
"""

from __future__ import annotations

import functools

import numpy as np

from attribution.render.maps import (
    ReduceMode,
    is_signed_mode,
    normalize_magnitude,
    normalize_signed,
    reduce_channels,
)

SIGNED_CMAP = "RdBu_r"  # negative blue, zero near-white, positive red
MAGNITUDE_CMAP = "inferno"  # zero black, large bright yellow
_SIGNED_LUT_SIZE = 257  # odd: entry 128 is the exact centre
_MAGNITUDE_LUT_SIZE = 256


@functools.lru_cache(maxsize=16)
def colormap_lut(name: str, size: int = 256) -> np.ndarray:
    """A matplotlib colormap sampled at `size` evenly spaced points.

    Args:
      name: a registered matplotlib colormap, e.g. "RdBu_r", "bwr", "inferno".
      size: number of entries (>= 2).

    Returns:
      Read-only uint8 `[size, 3]` RGB table; entry 0 is the colormap at 0, the last at 1.
    """
    from matplotlib import colormaps  # lazy: only colormap data, never pyplot or a backend

    if name not in colormaps:
        raise ValueError(
            f"Unknown colormap {name!r}; pass a name registered in matplotlib.colormaps, "
            "e.g. 'RdBu_r', 'bwr', 'coolwarm' (signed) or 'inferno', 'magma', 'viridis'."
        )
    if size < 2:
        raise ValueError(f"size must be >= 2; got {size!r}.")
    rgba = colormaps[name].resampled(size)(np.arange(size))
    lut = np.round(rgba[:, :3] * 255.0).astype(np.uint8)
    lut.flags.writeable = False
    return lut


def colorize_signed(maps: np.ndarray, cmap: str = SIGNED_CMAP) -> np.ndarray:
    """Colours signed maps in [-1, 1] with a diverging colormap.

    Args:
      maps: `[N, H, W]` values in [-1, 1] (e.g. from `normalize_signed`); others are clipped.
      cmap: a diverging matplotlib colormap; -1, 0 and 1 get its first, centre and last colour.

    Returns:
      uint8 `[N, H, W, 3]`.
    """
    maps = _check_normalized(maps)
    lut = colormap_lut(cmap, _SIGNED_LUT_SIZE)
    half = (_SIGNED_LUT_SIZE - 1) / 2
    index = np.rint((np.clip(maps, -1.0, 1.0) + 1.0) * half).astype(np.intp)
    return lut[index]


def colorize_magnitude(maps: np.ndarray, cmap: str = MAGNITUDE_CMAP) -> np.ndarray:
    """Colours maps in [0, 1] with a sequential colormap.

    Args:
      maps: `[N, H, W]` values in [0, 1] (e.g. from `normalize_magnitude`); others are clipped.
      cmap: a sequential matplotlib colormap; 0 and 1 get its first and last colour.

    Returns:
      uint8 `[N, H, W, 3]`.
    """
    maps = _check_normalized(maps)
    lut = colormap_lut(cmap, _MAGNITUDE_LUT_SIZE)
    index = np.rint(np.clip(maps, 0.0, 1.0) * (_MAGNITUDE_LUT_SIZE - 1)).astype(np.intp)
    return lut[index]


def heatmaps(
    maps: np.ndarray,
    mode: ReduceMode = "sum",
    percentile: float = 99.0,
    cmap: str | None = None,
    scales: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce, normalize and colour attribution maps in one call.

    Args:
      maps: `[N, H, W, C]` attributions.
      mode: channel reduction (see `reduce_channels`); "sum" is shown signed, the others as
        magnitudes.
      percentile: per-map clipping percentile in (0, 100].
      cmap: colormap name; defaults to `SIGNED_CMAP` or `MAGNITUDE_CMAP` by mode.
      scales: `[N]` positive values shown as full colour, one per map, instead of each map's
        percentile (e.g. one scale shared by a method's maps across epochs).

    Returns:
      (uint8 `[N, H, W, 3]` colours, float32 `[N, H, W]` normalized values in [-1, 1] or [0, 1]).
    """
    reduced = reduce_channels(maps, mode)
    if is_signed_mode(mode):
        normalized = normalize_signed(reduced, percentile, scales)
        return colorize_signed(normalized, cmap or SIGNED_CMAP), normalized
    normalized = normalize_magnitude(reduced, percentile, scales)
    return colorize_magnitude(normalized, cmap or MAGNITUDE_CMAP), normalized


def display_range(images: np.ndarray) -> tuple[float, float]:
    """The value range to show float images in: [0, 1] if they lie in it, else their own
    minimum and maximum (standardized images, [-1, 1] images, [0, 255] floats).

    Raises:
      ValueError: If the images hold NaN or inf.
    """
    images = np.asarray(images, np.float32)
    if images.size and not np.all(np.isfinite(images)):
        raise ValueError("images contain NaN or inf values; they cannot be displayed.")
    if not images.size or (images.min() >= -1e-6 and images.max() <= 1.0 + 1e-6):
        return 0.0, 1.0
    low, high = float(images.min()), float(images.max())
    return low, high if high > low else low + 1.0


def digit_to_rgb(images: np.ndarray, value_range: tuple[float, float] = (0.0, 1.0)
                 ) -> np.ndarray:
    """Grey (or colour) input images as uint8 RGB.

    Args:
      images: `[N, H, W, C]` with C in {1, 3}: floats in `value_range` or uint8.
      value_range: (black, white) for float images; see `display_range` for any images.

    Returns:
      uint8 `[N, H, W, 3]`.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must have shape [N, H, W, C] with C 1 or 3; got {images.shape}.")
    if images.dtype != np.uint8:
        low, high = value_range
        images = (images.astype(np.float32) - low) / (high - low)
        if images.size and not (np.all(np.isfinite(images)) and images.min() >= -1e-6
                                and images.max() <= 1.0 + 1e-6):
            raise ValueError(
                f"float images must lie in [{low:g}, {high:g}]; got values from "
                f"{np.nanmin(images) * (high - low) + low:g} to "
                f"{np.nanmax(images) * (high - low) + low:g}. Pass value_range="
                "display_range(images) to show any range.")
        images = np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def overlay(
    heat_rgb: np.ndarray,
    images: np.ndarray,
    alpha: float = 0.6,
    weights: np.ndarray | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """Blends heatmap colours over the input images.

    Each pixel is `(1 - a) * image + a * heat` with `a = alpha * weight`. Passing
    `weights=abs(normalized_map)` lets the digit show through where the attribution is small,
    which suits signed maps whose zero colour is near-white.

    Args:
      heat_rgb: uint8 `[N, H, W, 3]`, e.g. from `colorize_signed`.
      images: `[N, H, W, C]` inputs, floats in [0, 1] or uint8, C in {1, 3}.
      alpha: opacity of the heatmap in [0, 1].
      weights: optional `[N, H, W]` per-pixel opacity factors in [0, 1].
      value_range: as for `digit_to_rgb`.

    Returns:
      uint8 `[N, H, W, 3]`.
    """
    heat_rgb = np.asarray(heat_rgb)
    if heat_rgb.dtype != np.uint8 or heat_rgb.ndim != 4 or heat_rgb.shape[-1] != 3:
        raise ValueError("heat_rgb must be uint8 [N, H, W, 3]; got "
                         f"{heat_rgb.dtype} {heat_rgb.shape}.")
    base = digit_to_rgb(images, value_range)
    if base.shape != heat_rgb.shape:
        raise ValueError(f"images {base.shape[:3]} and heat_rgb {heat_rgb.shape[:3]} must have "
                         "the same [N, H, W].")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha!r}.")
    a = np.full(heat_rgb.shape[:3], alpha, np.float32)
    if weights is not None:
        weights = np.asarray(weights, np.float32)
        if weights.shape != heat_rgb.shape[:3]:
            raise ValueError(f"weights must have shape {heat_rgb.shape[:3]}; got {weights.shape}.")
        a = a * np.clip(weights, 0.0, 1.0)
    a = a[..., None]
    blended = (1.0 - a) * base.astype(np.float32) + a * heat_rgb.astype(np.float32)
    return np.rint(blended).astype(np.uint8)


def _check_normalized(maps: np.ndarray) -> np.ndarray:
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape [N, H, W]; got shape {maps.shape}.")
    if not np.all(np.isfinite(maps)):
        raise ValueError("maps contain NaN or inf values.")
    return maps
