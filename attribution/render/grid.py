"""A labelled image grid: rows of cells with a header of column labels and a band of row labels.

Text is drawn with PIL's built-in bitmap font, so no font files are needed and the same labels
give the same pixels everywhere.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

_BREAK = re.compile(r"[^ _-]+[ _-]*|[ _-]+")  # words, each with the separators after it


def grid(
    cells: np.ndarray,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    scale: int = 2,
    pad: int = 2,
    background: int = 255,
) -> np.ndarray:
    """Lays out `rows x cols` images, upscaled, with optional row and column labels.

    With `cw = W * scale`, `ch = H * scale`, cell `(r, c)` has its top-left corner at
    `(top + pad + r * (ch + pad), left + pad + c * (cw + pad))`, where `top` is the header
    height (0 without column labels) and `left` the row-label band width (0 without row labels).
    Column labels wrap (at spaces, "_" or "-" where possible) to fit their cell's width.

    Args:
      cells: uint8 `[rows, cols, H, W, 3]`.
      row_labels: `rows` strings drawn left of each row, e.g. "7 -> 7 (0.98)"; may hold "\\n".
      col_labels: `cols` strings drawn above each column.
      scale: integer nearest-neighbour upscaling factor (>= 1).
      pad: pixels between cells and around the edges (>= 0).
      background: grey level of the background in [0, 255]; text is black on light
        backgrounds and white on dark ones.

    Returns:
      uint8 `[top + pad + rows * (ch + pad), left + pad + cols * (cw + pad), 3]`.
    """
    cells = np.asarray(cells)
    if cells.dtype != np.uint8 or cells.ndim != 5 or cells.shape[-1] != 3:
        raise ValueError(f"cells must be uint8 [rows, cols, H, W, 3]; got {cells.dtype} "
                         f"{cells.shape}.")
    rows, cols, h, w, _ = cells.shape
    for name, value, low in (("scale", scale, 1), ("pad", pad, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an int >= {low}; got {value!r}.")
    if not 0 <= background <= 255:
        raise ValueError(f"background must be in [0, 255]; got {background!r}.")
    for name, labels, count in (("row_labels", row_labels, rows), ("col_labels", col_labels, cols)):
        if labels is not None and len(labels) != count:
            raise ValueError(f"{name} needs {count} labels, one per {name[:3]}; got {len(labels)}.")

    font = _font()
    line_h = _line_height(font)
    cw, ch = w * scale, h * scale
    col_lines = [_wrap(str(label), font, cw) for label in col_labels] if col_labels else []
    top = pad + max(len(lines) for lines in col_lines) * line_h if col_lines else 0
    row_text = [str(label) for label in row_labels] if row_labels else []
    left = pad + max(_text_size(font, t, line_h)[0] for t in row_text) if row_text else 0

    canvas = np.full((top + pad + rows * (ch + pad), left + pad + cols * (cw + pad), 3),
                     background, np.uint8)
    # All cells in one copy: the cell area seen as [rows, ch + pad, cols, cw + pad, 3], each
    # cell upscaled by broadcasting over [h, scale, w, scale].
    area = canvas[top + pad:, left + pad:].reshape(rows, ch + pad, cols, cw + pad, 3)
    big = np.broadcast_to(cells.transpose(0, 2, 1, 3, 4)[:, :, None, :, :, None, :],
                          (rows, h, scale, cols, w, scale, 3))
    area[:, :ch, :, :cw] = big.reshape(rows, ch, cols, cw, 3)
    if not (col_lines or row_text):
        return canvas

    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    ink = (0, 0, 0) if background >= 128 else (255, 255, 255)
    for c, lines in enumerate(col_lines):
        x0 = left + pad + c * (cw + pad)
        for i, line in enumerate(lines):
            dx = max(0, (cw - _text_size(font, line, line_h)[0]) // 2)
            draw.text((x0 + dx, pad + i * line_h), line, fill=ink, font=font)
    for r, text in enumerate(row_text):
        dy = max(0, (ch - _text_size(font, text, line_h)[1]) // 2)
        y = top + pad + r * (ch + pad) + dy
        for i, line in enumerate(text.split("\n")):
            draw.text((pad, y + i * line_h), line, fill=ink, font=font)
    return np.asarray(image, dtype=np.uint8).copy()


@functools.cache
def _font() -> ImageFont.ImageFont:
    # Pillow >= 10.1 names the bitmap font explicitly; older versions return it by default.
    loader = getattr(ImageFont, "load_default_imagefont", ImageFont.load_default)
    return loader()


def _line_height(font: ImageFont.ImageFont) -> int:
    return font.getbbox("Ag|")[3] + 1


def _text_size(font: ImageFont.ImageFont, text: str, line_h: int) -> tuple[int, int]:
    lines = text.split("\n")
    width = max((font.getbbox(line)[2] if line else 0) for line in lines)
    return width, len(lines) * line_h


def _wrap(text: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    """Greedy line breaks so each line fits `width` pixels; over-long words break anywhere."""
    def fits(s: str) -> bool:
        return not s or font.getbbox(s.rstrip(" "))[2] <= width

    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for token in _BREAK.findall(paragraph):
            while token:
                if fits(line + token):
                    line, token = line + token, ""
                elif line:
                    lines.append(line.rstrip(" "))
                    line = ""
                else:
                    n = next((k for k in range(len(token), 0, -1) if fits(token[:k])), 1)
                    lines.append(token[:n])
                    token = token[n:]
        lines.append(line.rstrip(" "))
    return lines
