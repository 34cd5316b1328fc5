"""Similarity functions against scipy's spearmanr and skimage's SSIM on fixed arrays."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from skimage.feature import hog
from skimage.metrics import structural_similarity

from attribution.sanity import similarity
from attribution.sanity.hog import hog_features


def _maps(seed: int, n: int = 4, shape=(12, 10, 2)) -> np.ndarray:
    """Random maps with many exact ties (zeros and repeated values), like MNIST gradients."""
    rng = np.random.default_rng(seed)
    # Quarters: exact in float32, so channel sums tie exactly as they do in float64.
    values = (np.round(4 * rng.standard_normal((n, *shape))) / 4).astype(np.float32)
    values[rng.uniform(size=values.shape) < 0.5] = 0.0
    return values


def test_average_ranks_match_scipy():
    x = _maps(0).reshape(4, -1)
    # Ties among negative values, signed zeros, infinities and a constant row too: the ranks
    # count the values at or below each one from the order-reversed keys.
    ties = np.round(np.random.default_rng(5).standard_normal(x.shape[1]) * 2).astype(np.float32)
    zeros = np.where(np.arange(x.shape[1]) % 2 == 0, -0.0, 0.0).astype(np.float32)
    infinite = np.where(np.arange(x.shape[1]) % 3 == 0, np.inf, -ties)
    infinite[1::7] = -np.inf
    x = np.concatenate([x, -x, ties[None], zeros[None], infinite[None],
                        np.full_like(x[:1], 3.0)])
    ours = np.asarray(similarity.average_ranks(jnp.asarray(x)))
    np.testing.assert_array_equal(ours, np.stack([stats.rankdata(r) for r in x]))
    # NaNs rank above every number, tied with each other (as jnp.sort places them).
    with_nan = np.where(np.arange(x.shape[1]) % 5 == 0, np.nan, ties).astype(np.float32)
    ours = np.asarray(similarity.average_ranks(jnp.asarray(with_nan[None])))[0]
    np.testing.assert_array_equal(ours, stats.rankdata(np.where(np.isnan(with_nan), 1e9,
                                                                with_nan)))


@pytest.mark.parametrize("name, transform", [
    ("spearman_abs", lambda m: np.abs(m) / np.abs(m).max()),
    ("spearman_signed", lambda m: m / np.abs(m).max()),
])
def test_spearman_matches_scipy_with_ties(name, transform):
    a, b = _maps(1), _maps(2)
    b[0] = a[0] * 3.0 + 0.0  # scaled copy: same ranks
    ours = np.asarray(similarity.SIMILARITIES[name](jnp.asarray(a), jnp.asarray(b)))
    # The reference normalizes as the paper does, in float64.
    ref = [stats.spearmanr(transform(x.astype(np.float64).sum(-1)).ravel(),
                           transform(y.astype(np.float64).sum(-1)).ravel())[0]
           for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert ours[0] == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.abs(ours[1:]) < 0.5), "independent random maps correlate weakly"


def test_spearman_abs_ignores_sign_and_signed_does_not():
    a = _maps(3)
    abs_score = similarity.spearman_abs(jnp.asarray(a), jnp.asarray(-a))
    signed_score = similarity.spearman_signed(jnp.asarray(a), jnp.asarray(-a))
    np.testing.assert_allclose(abs_score, 1.0, atol=1e-6)
    np.testing.assert_allclose(signed_score, -1.0, atol=1e-6)


def test_constant_map_scores_zero_not_nan():
    a = _maps(4)
    zeros = np.zeros_like(a)
    for name in ("spearman_abs", "spearman_signed"):
        out = np.asarray(similarity.SIMILARITIES[name](jnp.asarray(a), jnp.asarray(zeros)))
        np.testing.assert_array_equal(out, 0.0)


def test_ssim_matches_skimage():
    rng = np.random.default_rng(5)
    a = rng.uniform(size=(3, 28, 28, 1)).astype(np.float32)
    b = (a + 0.3 * rng.standard_normal(a.shape)).astype(np.float32)
    b[2] = rng.uniform(size=(28, 28, 1))
    a[1, 10:, :, 0] = 0.0  # a flat region, as on MNIST's background
    ours = np.asarray(similarity.ssim(jnp.asarray(a), jnp.asarray(b)))

    def minmax(m):
        m = m.sum(-1)
        return (m - m.min()) / (m.max() - m.min())

    ref = [structural_similarity(minmax(x), minmax(y), data_range=1.0)
           for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert ref[0] > ref[2], "a noisy copy is more similar than an unrelated image"


@pytest.mark.parametrize("name", sorted(similarity.SIMILARITIES))
def test_identical_maps_score_one_and_jit(name):
    a = jnp.asarray(_maps(6, shape=(24, 26, 1)))
    out = jax.jit(similarity.SIMILARITIES[name])(a, a)
    assert out.shape == (4,) and out.dtype == jnp.float32
    np.testing.assert_allclose(out, 1.0, atol=1e-5)


def test_hog_features_match_skimage():
    rng = np.random.default_rng(8)
    digit_like = np.zeros((28, 28), np.float32)
    digit_like[5:22, 11:15] = 1.0  # flat regions: many zero gradients and exact angles
    for images in (np.stack([rng.uniform(size=(28, 28)), digit_like]).astype(np.float32),
                   rng.uniform(size=(2, 40, 33)).astype(np.float32)):  # 3x2 blocks
        ours = np.asarray(jax.jit(hog_features)(jnp.asarray(images)))
        np.testing.assert_allclose(ours, np.stack([hog(x) for x in images]), atol=1e-6)


def test_hog_spearman_matches_scipy_on_skimage_features():
    rng = np.random.default_rng(9)
    a = rng.standard_normal((3, 28, 28, 1)).astype(np.float32)
    b = (a + rng.standard_normal(a.shape)).astype(np.float32)

    def features(m):
        m = m.sum(-1)
        return hog((m - m.min()) / (m.max() - m.min()))

    ours = np.asarray(jax.jit(similarity.hog_spearman)(jnp.asarray(a), jnp.asarray(b)))
    ref = [stats.spearmanr(features(x), features(y))[0] for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_l1_similarity_sees_scale():
    a = jnp.asarray(_maps(7))
    np.testing.assert_allclose(similarity.l1_similarity(a, 2 * a), 2 / 3, atol=1e-6)
    np.testing.assert_allclose(similarity.l1_similarity(a, -a), 0.0, atol=1e-6)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="Unknown similarity 'pearson'"):
        similarity.get_similarity("pearson")
    with pytest.raises(ValueError, match="H, W >= 7"):
        similarity.ssim(jnp.zeros((2, 5, 5, 1)), jnp.zeros((2, 5, 5, 1)))
    with pytest.raises(ValueError, match="at least 24x24"):
        similarity.hog_spearman(jnp.zeros((2, 16, 30, 1)), jnp.zeros((2, 16, 30, 1)))
