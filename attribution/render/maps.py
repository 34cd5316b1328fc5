"""Attribution maps to display values: channel reduction and per-map percentile scaling.

Host-side numpy only. Each map is scaled on its own, so a map's colours never depend on the
other maps in its batch, and zero always lands on the same colour: maps from different epochs
stay comparable by shape and sign even when their magnitudes drift.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

ReduceMode = Literal["sum", "abs_sum", "max_abs"]
REDUCE_MODES: tuple[str, ...] = ("sum", "abs_sum", "max_abs")


def reduce_channels(maps: np.ndarray, mode: ReduceMode = "sum") -> np.ndarray:
    """Collapses the channel axis of attribution maps.

    Args:
      maps: `[N, H, W, C]` attributions.
      mode: "sum" (signed: channels that disagree cancel), "abs_sum" (magnitude: sum of |a|) or
        "max_abs" (magnitude: the largest |a| over channels).

    Returns:
      float32 `[N, H, W]`; signed for "sum", non-negative otherwise.
    """
    if mode not in REDUCE_MODES:
        raise ValueError(f"Unknown reduce mode {mode!r}; valid modes: {', '.join(REDUCE_MODES)}.")
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 4:
        raise ValueError(f"maps must have shape [N, H, W, C]; got shape {maps.shape}.")
    if mode == "sum":
        return maps.sum(axis=-1)
    if mode == "abs_sum":
        return np.abs(maps).sum(axis=-1)
    return np.abs(maps).max(axis=-1)


def is_signed_mode(mode: ReduceMode) -> bool:
    """Whether `reduce_channels(..., mode)` gives signed maps (else non-negative ones)."""
    if mode not in REDUCE_MODES:
        raise ValueError(f"Unknown reduce mode {mode!r}; valid modes: {', '.join(REDUCE_MODES)}.")
    return mode == "sum"


def normalize_signed(maps: np.ndarray, percentile: float = 99.0,
                     scales: np.ndarray | None = None) -> np.ndarray:
    """Scales each signed map by a percentile of its |values| into [-1, 1]; zero stays zero.

    Values beyond the percentile clip to ±1, so a few outlier pixels do not wash out the rest.

    Args:
      maps: `[N, H, W]` signed maps.
      percentile: in (0, 100]; 100 scales by the largest |value|.
      scales: `[N]` positive per-map scales to use instead of the percentile.

    Returns:
      float32 `[N, H, W]` in [-1, 1]. An all-zero map stays all zero.
    """
    maps = _check_maps(maps)
    scale = _given_or_percentile(scales, np.abs(maps), percentile)
    return np.clip(maps / scale, -1.0, 1.0)


def normalize_magnitude(maps: np.ndarray, percentile: float = 99.0,
                        scales: np.ndarray | None = None) -> np.ndarray:
    """Scales each non-negative map by a percentile of its values into [0, 1].

    Args:
      maps: `[N, H, W]` maps with no negative values (e.g. `reduce_channels(..., "abs_sum")`).
      percentile: in (0, 100]; 100 scales by the largest value.
      scales: `[N]` positive per-map scales to use instead of the percentile.

    Returns:
      float32 `[N, H, W]` in [0, 1]. An all-zero map stays all zero.
    """
    maps = _check_maps(maps)
    if maps.size and maps.min() < 0:
        raise ValueError(
            f"normalize_magnitude needs non-negative maps; got a minimum of {maps.min():g}. "
            "Use normalize_signed, or reduce with mode 'abs_sum' or 'max_abs'."
        )
    return np.clip(maps / _given_or_percentile(scales, maps, percentile), 0.0, 1.0)


def _check_maps(maps: np.ndarray) -> np.ndarray:
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3:
        raise ValueError(f"maps must have shape [N, H, W]; got shape {maps.shape}.")
    if not np.all(np.isfinite(maps)):
        raise ValueError("maps contain NaN or inf values.")
    return maps


def percentile_scales(magnitudes: np.ndarray, percentile: float = 99.0) -> np.ndarray:
    """Per-map scales `[N]` of `[N, H, W]` non-negative maps: the percentile, else the
    maximum, else 1 (an all-zero map)."""
    return _scales(np.asarray(magnitudes, np.float32), percentile)[:, 0, 0]


def _given_or_percentile(scales, magnitudes, percentile) -> np.ndarray:
    if scales is None:
        return _scales(magnitudes, percentile)
    scales = np.asarray(scales, np.float32).reshape(-1)
    if scales.shape != (magnitudes.shape[0],) or not np.all(scales > 0):
        raise ValueError(f"scales must be {magnitudes.shape[0]} positive values, one per map; "
                         f"got {scales!r}.")
    return scales[:, None, None]


def _scales(magnitudes: np.ndarray, percentile: float) -> np.ndarray:
    """Per-map scale `[N, 1, 1]`: the percentile, else the maximum, else 1 (all-zero map)."""
    if isinstance(percentile, bool) or not 0.0 < float(percentile) <= 100.0:
        raise ValueError(f"percentile must be in (0, 100]; got {percentile!r}.")
    flat = magnitudes.reshape(magnitudes.shape[0], -1)
    if flat.shape[1] == 0:
        return np.ones((magnitudes.shape[0], 1, 1), np.float32)
    scale = np.percentile(flat, float(percentile), axis=1).astype(np.float32)
    # A sparse map (nonzero on fewer pixels than 100 - percentile %) has a zero percentile:
    # fall back to its maximum so it still shows.
    scale = np.where(scale > 0, scale, flat.max(axis=1))
    return np.where(scale > 0, scale, 1.0).astype(np.float32)[:, None, None]
