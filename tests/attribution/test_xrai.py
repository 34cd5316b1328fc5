"""XRAI: the greedy region ranking by hand, conservation of the base map, bad options."""

import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from attribution.methods.xrai import region_map

# Pixels 0..5; three overlapping candidate regions.
ATTRIBUTION = np.array([5.0, 1.0, 1.0, 4.0, 0.0, 7.0], np.float32)
REGIONS = np.array([[1, 1, 0, 0, 0, 0],   # A: gain 3, taken first
                    [0, 1, 1, 1, 0, 0],   # B: gain 2, then (1 + 4) / 2 = 2.5 over {2, 3}
                    [0, 0, 0, 1, 1, 0]],  # C: gain 2, then 0 over {4}
                   bool)


@pytest.mark.parametrize("min_pixel_diff, expected", [
    (1, [3.0, 3.0, 2.5, 2.5, 0.0, 7.0]),  # Pixel 5, in no region, gets its own mean.
    (2, [3.0, 3.0, 2.5, 2.5, 3.5, 3.5]),  # C adds one pixel: dropped; {4, 5} share a mean.
])
def test_regions_are_ranked_by_gain_density_as_worked_by_hand(min_pixel_diff, expected):
    got = region_map(jnp.asarray(ATTRIBUTION), jnp.asarray(REGIONS), min_pixel_diff)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-6)


def test_of_equal_gains_the_first_region_wins():
    """Regions {0, 1} and {1, 2} over (3, 1, 3) both have gain 2; whichever goes first gives
    its pixels 2, and the other adds its last pixel at 3: the order shows in the map."""
    attribution_map = jnp.asarray([3.0, 1.0, 3.0])
    regions = jnp.asarray([[1, 1, 0], [0, 1, 1]], bool)
    np.testing.assert_allclose(np.asarray(region_map(attribution_map, regions, 1)),
                               [2.0, 2.0, 3.0])
    np.testing.assert_allclose(np.asarray(region_map(attribution_map, regions[::-1], 1)),
                               [3.0, 2.0, 2.0])


@pytest.mark.slow
def test_the_map_redistributes_the_base_attribution_without_changing_its_sum(trained_cnn,
                                                                              digits):
    """Each region's pixels get its mean base attribution: the total is IG's, averaged over the
    black and white baselines (one channel: the channel max is the map itself)."""
    model, variables = trained_cnn
    images, labels = digits[0][:6], digits[1][:6]
    options = dict(steps=16)
    xrai = np.asarray(attribution.explain("xrai", model, variables, images, labels, **options),
                      np.float64)
    ig = sum(np.asarray(attribution.explain("integrated_gradients", model, variables, images,
                                            labels, steps=16, baseline=b), np.float64)
             for b in (0.0, 1.0)) / 2
    np.testing.assert_allclose(xrai.sum(axis=(1, 2, 3)), ig.sum(axis=(1, 2, 3)), rtol=1e-4,
                               atol=1e-4 * np.abs(ig).sum(axis=(1, 2, 3)).max())
    # Piecewise constant: at most one value per candidate region (100 + 36 + 16 + 9 + 4 SLIC
    # segments) plus the uncovered pixels' mean, against 784 pixels; and not IG itself.
    assert all(len(np.unique(m)) <= 166 for m in xrai)
    assert not np.allclose(xrai, ig, atol=1e-3)


@pytest.mark.parametrize("options, message", [
    (dict(baselines=()), "baselines"), (dict(segment_sizes=(3, 99)), "larger than the image"),
    (dict(dilation=-1), "dilation"), (dict(min_pixel_diff=0), "min_pixel_diff"),
    (dict(compactness=0), "compactness"), (dict(rule="trapezoid"), "valid rules"),
])
def test_bad_options_name_the_valid_values(trained_cnn, options, message):
    model, variables = trained_cnn
    with pytest.raises(ValueError, match=message):
        attribution.build("xrai", model, variables, (28, 28, 1), **options)
