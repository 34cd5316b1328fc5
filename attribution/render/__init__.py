"""Host-side rendering of attribution maps into uint8 RGB images (numpy, PIL, matplotlib).

    rgb, values = heatmaps(maps, mode="sum")          # [N, H, W, C] -> uint8 [N, H, W, 3]
    shown = overlay(rgb, images, weights=abs(values)) # heat over the grey digit
    panel = grid(cells, row_labels, col_labels)       # [rows, cols, H, W, 3] -> one image

Every output is uint8 RGB, ready for a metric writer's `write_images`.
"""

from attribution.render.color import (
    MAGNITUDE_CMAP,
    SIGNED_CMAP,
    colorize_magnitude,
    colorize_signed,
    colormap_lut,
    digit_to_rgb,
    display_range,
    heatmaps,
    overlay,
)
from attribution.render.grid import grid
from attribution.render.legend import with_legend
from attribution.render.maps import (
    REDUCE_MODES,
    ReduceMode,
    is_signed_mode,
    normalize_magnitude,
    normalize_signed,
    percentile_scales,
    reduce_channels,
)

__all__ = [
    "MAGNITUDE_CMAP",
    "REDUCE_MODES",
    "SIGNED_CMAP",
    "ReduceMode",
    "colorize_magnitude",
    "colorize_signed",
    "colormap_lut",
    "digit_to_rgb",
    "display_range",
    "grid",
    "heatmaps",
    "is_signed_mode",
    "normalize_magnitude",
    "normalize_signed",
    "overlay",
    "percentile_scales",
    "reduce_channels",
    "with_legend",
]
