"""The attribution callback's images, rendered on the host from maps of one or more firings.

Colour scales (`scale`):
  "per_method"  each probe's maps of one method share one scale across firings: the running
                maximum, over the firings so far, of each map's clipping percentile. Maps that
                grow get brighter and maps that fade get paler; the newest firing can still
                raise the scale, and an evolution strip uses the scale of its last column.
  "per_map"     every map is clipped at its own percentile: each map's shape shows in full,
                but magnitudes do not compare across firings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from attribution import render
from callbacks.titles import METHOD_TITLES

SCALES = ("per_method", "per_map")


def check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise ValueError(f"Unknown scale {scale!r}; valid: {', '.join(SCALES)}.")
    return scale


def title(method: str) -> str:
    return METHOD_TITLES.get(method, method[:10])


def reduce_mode(signed: bool) -> str:
    return "sum" if signed else "abs_sum"


def clip_values(maps: np.ndarray, signed: bool, percentile: float) -> np.ndarray:
    """float32 `[N]`: each map's clipping percentile of its |reduced| values (`[N, H, W, C]`)."""
    return render.percentile_scales(np.abs(render.reduce_channels(maps, reduce_mode(signed))),
                                    percentile)


def firing_scales(clips: np.ndarray, scale: str) -> np.ndarray:
    """`[F, P]` scales to colour F firings of P probes with, from their clip values `[F, P]`."""
    clips = np.asarray(clips, np.float32)
    return np.maximum.accumulate(clips, axis=0) if scale == "per_method" else clips


def colour(maps: np.ndarray, signed: bool, scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 `[N, H, W, 3]`, normalized `[N, H, W]`) of maps `[N, H, W, C]` at `scales` `[N]`."""
    return render.heatmaps(maps, reduce_mode(signed), scales=scales)


def legend(methods: Sequence[str], signed: Mapping[str, bool], scale: str,
           percentile: float) -> list[tuple[str, str]]:
    """Colour bars for `methods`' maps: one signed and one magnitude bar, as they occur."""
    how = (f"each probe's maps share one scale across firings (running max of their "
           f"{percentile:g}th percentile)" if scale == "per_method"
           else f"each map to its own {percentile:g}th percentile")
    bars = []
    for kind, is_signed in (("signed", True), ("magnitude", False)):
        titles = [METHOD_TITLES.get(n, n) for n in methods if signed[n] == is_signed]
        if titles:
            bars.append((kind, f"{', '.join(titles)}: {how}"))
    return bars


def row_labels(labels: np.ndarray, predicted: np.ndarray, confidence: np.ndarray) -> list[str]:
    """"true>predicted confidence" per probe."""
    return [f"{t}>{p} {c:.2f}" for t, p, c in zip(labels, predicted, confidence, strict=True)]


def column_label(step: int, epoch: float | None) -> str:
    """"step S" and, where known, "epoch E" below it."""
    if epoch is None or not np.isfinite(epoch):
        return f"step {step}"
    return f"step {step}\nepoch {epoch:.3g}"


def overview(digits: np.ndarray, coloured: Mapping[str, np.ndarray], rows: Sequence[str],
             legend_bars: Sequence[tuple[str, str]], input_label: str = "input") -> np.ndarray:
    """Probes x (input, each method): `digits` uint8 `[P, H, W, 3]`, `coloured` in order."""
    cells = np.stack([digits, *coloured.values()], axis=1)
    return render.with_legend(render.grid(cells, rows, [input_label, *map(title, coloured)]),
                              legend_bars)


def method_grid(name: str, digits: np.ndarray, coloured: np.ndarray, normalized: np.ndarray,
                images: np.ndarray, value_range: tuple[float, float], rows: Sequence[str],
                legend_bars: Sequence[tuple[str, str]]) -> np.ndarray:
    """Probes x (input, map, overlay) for one method."""
    overlays = render.overlay(coloured, images, weights=np.abs(normalized),
                              value_range=value_range)
    cells = np.stack([digits, coloured, overlays], axis=1)
    return render.with_legend(render.grid(cells, rows, ["input", title(name), "overlay"]),
                              legend_bars)


def evolution(maps: np.ndarray, signed: bool, clips: np.ndarray, scale: str,
              labels: np.ndarray, columns: Sequence[str],
              legend_bars: Sequence[tuple[str, str]]) -> np.ndarray:
    """Probes x firings for one method: `maps` `[F, P, H, W, C]`, `clips` `[F, P]`.

    With "per_method" every column uses the last firing's scales, so columns compare.
    """
    f, p = maps.shape[:2]
    scales = firing_scales(clips, scale)
    if scale == "per_method":
        scales = np.broadcast_to(scales[-1], (f, p))
    coloured, _ = colour(maps.reshape(f * p, *maps.shape[2:]), signed, scales.reshape(-1))
    cells = coloured.reshape(f, p, *coloured.shape[1:]).swapaxes(0, 1)
    return render.with_legend(render.grid(cells, [str(t) for t in labels], list(columns)),
                              legend_bars)
