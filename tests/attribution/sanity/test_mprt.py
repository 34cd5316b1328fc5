"""eMPRT's discrete entropy against numpy's histogram; sMPRT's smoothing wrapper."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import attribution
from attribution.sanity import mprt


@pytest.mark.slow
def test_discrete_entropy_is_numpys_histogram_entropy():
    rng = np.random.default_rng(0)
    maps = np.stack([rng.normal(size=(6, 5, 1)), rng.exponential(size=(6, 5, 1)),
                     np.r_[np.zeros(29), 1.0].reshape(6, 5, 1)]).astype(np.float32)
    for bins in (4, 100):
        expected = [stats.entropy(np.histogram(m.ravel(), bins=bins)[0]) for m in maps]
        np.testing.assert_allclose(np.asarray(mprt.discrete_entropy(jnp.asarray(maps), bins)),
                                   expected, rtol=1e-5)


@pytest.mark.slow
def test_efficient_mprt_is_the_relative_entropy_rise():
    structured = np.zeros((1, 8, 8, 1), np.float32)
    structured[0, 2:4, 2:4] = 1.0  # Two values: entropy of (60, 4) / 64.
    noise = np.random.default_rng(1).uniform(size=(1, 8, 8, 1)).astype(np.float32)
    before = stats.entropy([60, 4])
    after = stats.entropy(np.histogram(noise.ravel(), bins=100)[0])
    got = np.asarray(mprt.efficient_mprt(jnp.asarray(structured), jnp.asarray(noise)))
    np.testing.assert_allclose(got, [(after - before) / before], rtol=1e-5)
    constant = jnp.ones((1, 8, 8, 1))
    assert float(mprt.efficient_mprt(constant, jnp.asarray(noise))[0]) == 0.0


@pytest.mark.slow
def test_smoothed_is_smoothgrad_around_the_method(trained_cnn, digits):
    model, variables = trained_cnn
    name, options = mprt.smoothed("gradient_x_input", num_samples=4)
    images, labels = digits[0][:2], digits[1][:2]
    smooth = attribution.explain(name, model, variables, images, labels,
                                 key=jax.random.key(0), **options)
    direct = attribution.explain("smoothgrad", model, variables, images, labels,
                                 key=jax.random.key(0), base="gradient_x_input", num_samples=4,
                                 noise_scale=0.1)
    np.testing.assert_array_equal(np.asarray(smooth), np.asarray(direct))
