"""SLIC superpixels: they follow edges, cover the image, ignore the batch; dilation by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attribution import segmentation


def _square_patches(shape, size):
    rows, cols = np.arange(shape[0]) // size, np.arange(shape[1]) // size
    return rows[:, None] * -(-shape[1] // size) + cols[None, :]


@pytest.mark.slow
def test_segments_do_not_straddle_a_sharp_edge():
    """Two flat halves split off-grid: every segment lies in one half (a grid would not)."""
    image = np.zeros((1, 20, 20, 1), np.float32)
    image[:, :, 9:] = 1.0
    labels = np.asarray(segmentation.slic(jnp.asarray(image), size=4))[0]
    for label in np.unique(labels):
        assert len(np.unique(image[0, ..., 0][labels == label])) == 1
    patches = _square_patches((20, 20), 4)
    assert any(len(np.unique(image[0, ..., 0][patches == p])) == 2 for p in np.unique(patches))


def _purity(labels, strokes):
    """Fraction of pixels in the majority kind (stroke or background) of their segment."""
    agree = 0
    for label in np.unique(labels):
        inside = strokes[labels == label]
        agree += max(inside.sum(), (~inside).sum())
    return agree / labels.size


@pytest.mark.parametrize("size", [4, 7])
def test_segments_of_real_digits_follow_the_strokes(digits, size):
    images = digits[0][:16]
    labels = np.asarray(jax.jit(lambda x: segmentation.slic(x, size=size))(jnp.asarray(images)))
    assert labels.min() >= 0 and labels.max() < segmentation.grid_size(images.shape[1:], size)
    patches = _square_patches(images.shape[1:3], size)
    slic_purity = np.mean([_purity(lab, x[..., 0] > 0.5)
                           for lab, x in zip(labels, images, strict=True)])
    grid_purity = np.mean([_purity(patches, x[..., 0] > 0.5) for x in images])
    assert slic_purity > 0.97
    assert slic_purity > grid_purity + 0.03


@pytest.mark.slow
def test_an_image_is_segmented_alike_in_any_batch(digits):
    images = jnp.asarray(digits[0][:8])
    labels = np.asarray(segmentation.slic(images, size=5))
    alone = np.asarray(segmentation.slic(images[3:4], size=5))
    np.testing.assert_array_equal(alone[0], labels[3])


def test_dilation_grows_by_a_disk():
    mask = np.zeros((1, 7, 7), bool)
    mask[0, 3, 3] = True
    grown = np.asarray(segmentation.dilate(jnp.asarray(mask), 2))[0]
    rows, cols = np.nonzero(grown)
    np.testing.assert_array_equal(np.sort((rows - 3) ** 2 + (cols - 3) ** 2 <= 4), True)
    assert grown.sum() == 13  # The lattice points of a disk of radius 2.
    np.testing.assert_array_equal(np.asarray(segmentation.dilate(jnp.asarray(mask), 0)), mask)


@pytest.mark.parametrize("sizes, message", [(0, "must be"), ((), "at least one"),
                                            ((4, 40), "larger than the image"),
                                            ("a", "int")])
def test_bad_sizes_name_the_problem(sizes, message):
    with pytest.raises(ValueError, match=message):
        segmentation.check_sizes(sizes, (28, 28, 1), "segment_sizes")
