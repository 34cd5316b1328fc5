"""Occlusion on a linear model, where a patch's drop is w . (x - fill) over the patch."""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from tests.attribution._models import linear_model, weight_images


def _reference(w, x, fill, window, row_starts, col_starts):
    """Mean over covering windows of each window's drop w . (x - fill), by loops."""
    (wh, ww), (height, width, _) = window, x.shape
    total, count = np.zeros((height, width)), np.zeros((height, width))
    for y, c in itertools.product(row_starts, col_starts):
        patch = np.s_[y : y + wh, c : c + ww]
        total[patch] += np.sum(w[patch] * (x[patch] - fill[patch]))
        count[patch] += 1
    return np.repeat((total / count)[..., None], x.shape[2], axis=2)


@pytest.mark.parametrize(
    ("shape", "options", "window", "row_starts", "col_starts"),
    [
        # One-pixel windows: each pixel's own contribution w * (x - fill).
        ((3, 3, 1), {"window": 1, "fill": 0.0}, (1, 1), [0, 1, 2], [0, 1, 2]),
        # Overlapping windows: corners are covered once, the centre four times.
        ((4, 4, 2), {"window": 2, "stride": 1, "fill": 0.5}, (2, 2), [0, 1, 2], [0, 1, 2]),
        # Stride 2 leaves the last row and column uncovered: one more window flush with the edge.
        ((5, 5, 1), {"window": 2, "stride": 2, "fill": "image"}, (2, 2), [0, 2, 3], [0, 2, 3]),
        # Rectangular windows, default stride = window.
        ((4, 6, 1), {"window": (2, 3), "fill": "image"}, (2, 3), [0, 2], [0, 3]),
    ],
)
def test_matches_hand_computed_reference(shape, options, window, row_starts, col_starts):
    apply_fn, variables = linear_model(shape, num_classes=3)
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(2, *shape)).astype(np.float32)
    fill = options["fill"]
    if fill == "image":
        fill = rng.uniform(size=shape).astype(np.float32)
    targets = np.array([2, 0])
    maps = attribution.explain("occlusion", apply_fn, variables, images, targets,
                               chunk_size=2, **{**options, "fill": fill})
    weights = weight_images(variables, shape, targets)
    fill_image = np.broadcast_to(fill, shape)
    for i in range(2):
        expected = _reference(weights[i], images[i], fill_image, window, row_starts, col_starts)
        # A drop is a difference of two logits of size ~1: float32 cancellation, ~1e-6.
        np.testing.assert_allclose(maps[i], expected, atol=1e-5)


def test_chunk_size_does_not_change_result():
    shape = (6, 6, 1)
    apply_fn, variables = linear_model(shape, num_classes=3)
    images = jnp.asarray(np.random.default_rng(1).uniform(size=(2, *shape)), jnp.float32)
    targets = jnp.array([1, 2])
    maps = [attribution.explain("occlusion", apply_fn, variables, images, targets, window=2,
                                stride=1, chunk_size=c) for c in (1, 7, 25, 50)]
    # 25 window positions x 2 images = 50 occluded images: chunks of 1, of 7 (with padding),
    # of 25, and all at once.
    for other in maps[1:]:
        np.testing.assert_allclose(other, maps[0], atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"window": 9}, "window"),
        ({"window": (2, 2, 2)}, "window"),
        ({"stride": 0}, "stride"),
        ({"fill": np.zeros((2, 2))}, "fill"),
        ({"chunk_size": 0}, "chunk_size"),
    ],
)
def test_bad_options_raise(options, message):
    apply_fn, variables = linear_model((8, 8, 1), num_classes=3)
    with pytest.raises(ValueError, match=message):
        attribution.build("occlusion", apply_fn, variables, (8, 8, 1), **options)
