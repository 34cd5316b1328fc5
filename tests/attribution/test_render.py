"""Rendering attribution maps: reduction, percentile scaling, colours, overlays and grids."""

import numpy as np
import pytest
from matplotlib import colormaps

from attribution import render


def test_reduce_channels_matches_hand_computation():
    maps = np.array([1.0, -3.0, 2.0], np.float32).reshape(1, 1, 1, 3)
    assert render.reduce_channels(maps, "sum")[0, 0, 0] == 0.0
    assert render.reduce_channels(maps, "abs_sum")[0, 0, 0] == 6.0
    assert render.reduce_channels(maps, "max_abs")[0, 0, 0] == 3.0
    assert render.reduce_channels(maps).shape == (1, 1, 1)


def test_reduce_channels_rejects_bad_mode_and_shape():
    with pytest.raises(ValueError, match="'l2'.*sum, abs_sum, max_abs"):
        render.reduce_channels(np.zeros((1, 2, 2, 1)), "l2")
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        render.reduce_channels(np.zeros((2, 2, 1)))


def test_signed_map_hits_centre_and_ends_of_colormap():
    maps = np.array([-2.0, 0.0, 2.0], np.float32).reshape(1, 1, 3)
    normalized = render.normalize_signed(maps, percentile=100)
    np.testing.assert_array_equal(normalized, [[[-1.0, 0.0, 1.0]]])
    rgb = render.colorize_signed(normalized, "bwr")
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 1, 3, 3)
    np.testing.assert_array_equal(rgb[0, 0, 0], [0, 0, 255])  # bwr: blue
    np.testing.assert_array_equal(rgb[0, 0, 1], [255, 255, 255])  # exact white centre
    np.testing.assert_array_equal(rgb[0, 0, 2], [255, 0, 0])  # red
    rdbu = render.colorize_signed(normalized)  # default: ColorBrewer RdBu, reversed
    np.testing.assert_array_equal(rdbu[0, 0], [[5, 48, 97], [247, 247, 247], [103, 0, 31]])


def test_magnitude_map_uses_ends_of_sequential_colormap():
    maps = np.array([0.0, 1.0, 4.0], np.float32).reshape(1, 1, 3)
    normalized = render.normalize_magnitude(maps, percentile=100)
    np.testing.assert_allclose(normalized, [[[0.0, 0.25, 1.0]]])
    rgb = render.colorize_magnitude(normalized, "gray")
    np.testing.assert_array_equal(rgb[0, 0, :, 0], [0, 64, 255])  # round(0.25 * 255) = 64
    inferno = render.colorize_magnitude(normalized)
    lut = np.round(np.asarray(colormaps["inferno"].colors) * 255).astype(np.uint8)
    np.testing.assert_array_equal(inferno[0, 0, 0], lut[0])
    np.testing.assert_array_equal(inferno[0, 0, 2], lut[-1])


def test_percentile_clipping_ignores_one_outlier():
    maps = np.ones((2, 10, 10), np.float32)
    maps[0, 3, 4] = 1000.0
    maps[1] *= -0.5  # a second map, scaled on its own
    out = render.normalize_signed(maps, percentile=99)
    # The 99th percentile of 99 ones and one 1000 is 1 + 0.01 * 999 (linear interpolation).
    expected = 1.0 / (1.0 + 0.01 * 999.0)
    np.testing.assert_allclose(out[0, 0, 0], expected, rtol=1e-5)
    assert out[0, 3, 4] == 1.0  # the outlier is clipped
    np.testing.assert_array_equal(out[1], -1.0)
    mag = render.normalize_magnitude(np.abs(maps), percentile=50)
    np.testing.assert_array_equal(mag[0], np.ones((10, 10)))  # median is 1; outlier clips to 1


def test_sparse_map_falls_back_to_maximum():
    maps = np.zeros((1, 10, 10), np.float32)
    maps[0, 0, 0] = -4.0
    maps[0, 0, 1] = 2.0
    out = render.normalize_signed(maps, percentile=90)  # 2 of 100 pixels: 90th percentile is 0
    np.testing.assert_array_equal(out[0, 0, :2], [-1.0, 0.5])


@pytest.mark.parametrize("normalize", [render.normalize_signed, render.normalize_magnitude])
def test_zero_map_stays_zero(normalize):
    out = normalize(np.zeros((2, 5, 5), np.float32))
    assert np.all(np.isfinite(out)) and np.all(out == 0.0)


def test_normalize_rejects_bad_input():
    with pytest.raises(ValueError, match="percentile"):
        render.normalize_signed(np.ones((1, 2, 2)), percentile=0)
    with pytest.raises(ValueError, match="non-negative"):
        render.normalize_magnitude(-np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match="NaN"):
        render.normalize_signed(np.full((1, 2, 2), np.nan))
    with pytest.raises(ValueError, match="Unknown colormap 'nope'"):
        render.colorize_signed(np.zeros((1, 2, 2)), "nope")


def test_heatmaps_picks_signed_or_magnitude_by_mode():
    maps = np.array([-1.0, 0.0, 1.0], np.float32).reshape(1, 1, 3, 1)
    rgb, values = render.heatmaps(maps, "sum", percentile=100, cmap="bwr")
    np.testing.assert_array_equal(values, [[[-1.0, 0.0, 1.0]]])
    np.testing.assert_array_equal(rgb[0, 0, 1], [255, 255, 255])
    rgb, values = render.heatmaps(maps, "abs_sum", percentile=100, cmap="gray")
    np.testing.assert_array_equal(values, [[[1.0, 0.0, 1.0]]])
    np.testing.assert_array_equal(rgb[0, 0, :, 0], [255, 0, 255])
    assert rgb.dtype == np.uint8


def test_digit_to_rgb_and_overlay():
    images = np.array([0.0, 0.5, 1.0], np.float32).reshape(1, 1, 3, 1)
    grey = render.digit_to_rgb(images)
    assert grey.dtype == np.uint8 and grey.shape == (1, 1, 3, 3)
    np.testing.assert_array_equal(grey[0, 0, :, 1], [0, 128, 255])
    heat = np.zeros((1, 1, 3, 3), np.uint8)
    heat[..., 0] = 200
    out = render.overlay(heat, images, alpha=0.5)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0, :, 0], [100, 164, 228])  # (g + 200) / 2
    np.testing.assert_array_equal(out[0, 0, :, 1], [0, 64, 128])  # g / 2
    weighted = render.overlay(heat, images, alpha=1.0, weights=np.array([[[0.0, 1.0, 0.5]]]))
    np.testing.assert_array_equal(weighted[0, 0, :, 0], [0, 200, 228])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        render.digit_to_rgb(images * 3.0)
    with pytest.raises(ValueError, match="same"):
        render.overlay(heat, np.zeros((1, 2, 3, 1)))


def test_grid_shape_and_cell_offsets():
    rows, cols, h, w, scale, pad = 2, 3, 4, 5, 3, 2
    cells = np.arange(rows * cols, dtype=np.uint8).reshape(rows, cols, 1, 1, 1) * 10 + 1
    cells = np.broadcast_to(cells, (rows, cols, h, w, 3)).copy()
    out = render.grid(cells, scale=scale, pad=pad)
    ch, cw = h * scale, w * scale
    assert out.dtype == np.uint8
    assert out.shape == (pad + rows * (ch + pad), pad + cols * (cw + pad), 3)
    for r in range(rows):
        for c in range(cols):
            y, x = pad + r * (ch + pad), pad + c * (cw + pad)
            np.testing.assert_array_equal(out[y:y + ch, x:x + cw], cells[r, c, 0, 0, 0])
            assert out[y - 1, x, 0] == 255 and out[y + ch, x + cw, 0] == 255  # padding


def test_grid_upscales_by_nearest_neighbour():
    cells = np.zeros((1, 1, 2, 2, 3), np.uint8)
    cells[0, 0, 0, 1] = 255
    out = render.grid(cells, scale=2, pad=0)
    np.testing.assert_array_equal(out[..., 0], [[0, 0, 255, 255], [0, 0, 255, 255],
                                                 [0, 0, 0, 0], [0, 0, 0, 0]])


def test_grid_labels_draw_in_their_bands():
    rows, cols, h, w = 2, 2, 28, 28
    cells = np.full((rows, cols, h, w, 3), 255, np.uint8)  # white cells: only text is dark
    plain = render.grid(cells, scale=2, pad=2)
    out = render.grid(cells, ["7 -> 7 (0.98)", "1 -> 7 (0.51)"], ["gradient", "occlusion"])
    top = out.shape[0] - plain.shape[0]
    left = out.shape[1] - plain.shape[1]
    assert top > 0 and left > 0
    np.testing.assert_array_equal(out[top:, left:], plain)  # cells shift, nothing else changes
    header, band = out[:top, left:], out[top:, :left]
    assert (header < 128).any() and (band < 128).any()
    # Each label lands over its own column / beside its own row.
    cw, ch = w * 2, h * 2
    for c in range(cols):
        assert (header[:, 2 + c * (cw + 2):2 + c * (cw + 2) + cw] < 128).any()
    for r in range(rows):
        assert (band[2 + r * (ch + 2):2 + r * (ch + 2) + ch] < 128).any()


def test_grid_wraps_long_column_labels_into_taller_header():
    cells = np.zeros((1, 1, 28, 28, 3), np.uint8)
    short = render.grid(cells, col_labels=["ig"])
    long = render.grid(cells, col_labels=["integrated_gradients"])
    assert long.shape[1] == short.shape[1]  # columns keep their width
    assert long.shape[0] > short.shape[0]


def test_grid_rejects_bad_input():
    cells = np.zeros((2, 3, 4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        render.grid(cells.astype(np.float32))
    with pytest.raises(ValueError, match="row_labels needs 2"):
        render.grid(cells, row_labels=["a"])
    with pytest.raises(ValueError, match="scale"):
        render.grid(cells, scale=0)


def test_legend_bars_are_the_colormaps_under_the_image():
    from attribution.render.legend import BAR_HEIGHT, BAR_WIDTH

    image = np.full((20, 300, 3), 7, np.uint8)
    out = render.with_legend(image, [("signed", "grad"), ("magnitude", "Grad-CAM")], pad=4)
    assert out.shape[1] == 300  # Captions wrap to the image's width.
    np.testing.assert_array_equal(out[:20], image)  # The image itself is untouched.
    strip = out[20:, 4:4 + BAR_WIDTH]
    for cmap in (render.SIGNED_CMAP, render.MAGNITUDE_CMAP):
        lut = render.colormap_lut(cmap, BAR_WIDTH)
        rows = [r for r in range(len(strip)) if np.array_equal(strip[r], lut)]
        assert len(rows) == BAR_HEIGHT and rows[-1] - rows[0] == BAR_HEIGHT - 1, cmap
    with pytest.raises(ValueError, match="valid: signed, magnitude"):
        render.with_legend(image, [("rainbow", "x")])
