"""Colour bars under an image: what the heatmap colours mean.

A signed bar runs from the diverging colormap's negative end through zero to its positive
end; a magnitude bar from zero to the largest value. Maps are clipped at a percentile of their
own values, so the ends mean "that map's clip value", not a number shared across maps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from attribution.render.color import MAGNITUDE_CMAP, SIGNED_CMAP, colormap_lut
from attribution.render.grid import _font, _line_height, _wrap

BAR_WIDTH = 96
BAR_HEIGHT = 8
KINDS = {"signed": (SIGNED_CMAP, ("-", "0", "+")), "magnitude": (MAGNITUDE_CMAP, ("0", "max"))}


def with_legend(image: np.ndarray, bars: Sequence[tuple[str, str]], pad: int = 4,
                background: int = 255) -> np.ndarray:
    """`image` with one colour bar per entry of `bars` appended below it.

    Each bar is drawn at the left edge, `BAR_WIDTH` pixels sampled evenly from the colormap,
    with its tick labels under it and its caption under those, wrapped to the image's width
    (the image only widens if it is narrower than one bar).

    Args:
      image: uint8 `[H, W, 3]`, e.g. from `grid`.
      bars: `(kind, caption)` pairs; kind "signed" or "magnitude"; the caption says what
        the bar applies to.
      pad: pixels around each bar.
      background: grey level of the added strip.

    Returns:
      uint8 `[H + legend height, max(W, BAR_WIDTH + 2 pad), 3]`; the image is unchanged at
      the top left.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be uint8 [H, W, 3]; got {image.dtype} {image.shape}.")
    unknown = [kind for kind, _ in bars if kind not in KINDS]
    if unknown:
        raise ValueError(f"Unknown legend kind(s) {unknown}; valid: {', '.join(KINDS)}.")
    font = _font()
    line_h = _line_height(font)
    width = max(image.shape[1], BAR_WIDTH + 2 * pad)
    captions = [_wrap(caption, font, width - 2 * pad) for _, caption in bars]
    heights = [pad + BAR_HEIGHT + line_h * (1 + len(lines)) + pad for lines in captions]
    canvas = np.full((image.shape[0] + sum(heights), width, 3), background, np.uint8)
    canvas[:image.shape[0], :image.shape[1]] = image
    tops = image.shape[0] + np.cumsum([0, *heights[:-1]])
    for (kind, _), top in zip(bars, tops, strict=True):
        y = int(top) + pad
        canvas[y:y + BAR_HEIGHT, pad:pad + BAR_WIDTH] = colormap_lut(KINDS[kind][0],
                                                                    BAR_WIDTH)[None]
    out = Image.fromarray(canvas)
    draw = ImageDraw.Draw(out)
    ink = (0, 0, 0) if background >= 128 else (255, 255, 255)
    for (kind, _), lines, top in zip(bars, captions, tops, strict=True):
        y = int(top) + pad + BAR_HEIGHT
        ticks = KINDS[kind][1]
        for j, tick in enumerate(ticks):
            x = pad + round(j * (BAR_WIDTH - 1) / (len(ticks) - 1))
            tw = font.getbbox(tick)[2]
            draw.text((min(max(pad, x - tw // 2), pad + BAR_WIDTH - tw), y), tick, fill=ink,
                      font=font)
        for i, line in enumerate(lines):
            draw.text((pad, y + (i + 1) * line_h), line, fill=ink, font=font)
    return np.asarray(out, dtype=np.uint8).copy()
