"""VarGrad: the variance of a method's maps over the noisy copies SmoothGrad averages."""

import jax
import numpy as np
import pytest

import attribution
from tests.attribution._models import TinyReluNet, linear_model, random_variables, weight_images

SHAPE = (4, 4, 1)


@pytest.mark.slow
def test_is_smoothgrad_squared_minus_smoothgrad_squared_on_the_same_noise():
    model = TinyReluNet()
    variables = random_variables(model, SHAPE, seed=0)
    images = np.random.default_rng(1).uniform(size=(3, *SHAPE)).astype(np.float32)
    targets = np.array([0, 2, 3])
    key = jax.random.key(5)
    options = {"num_samples": 12, "noise_scale": 0.3, "chunk_size": 5}
    var = attribution.explain("vargrad", model, variables, images, targets, key=key, **options)
    mean = attribution.explain("smoothgrad", model, variables, images, targets, key=key,
                               **options)
    square = attribution.explain("smoothgrad", model, variables, images, targets, key=key,
                                 squared=True, **options)
    expected = np.maximum(np.asarray(square) - np.square(mean), 0)
    assert expected.max() > 0
    np.testing.assert_allclose(var, expected, rtol=1e-4, atol=1e-6 * expected.max())


def test_linear_model_gradient_does_not_vary_and_gradient_x_input_varies_as_the_noise():
    apply_fn, variables = linear_model(SHAPE, 3)
    images = np.random.default_rng(2).uniform(size=(2, *SHAPE)).astype(np.float32)
    targets = np.array([1, 2])
    samples, scale = 2048, 0.2
    flat = attribution.explain("vargrad", apply_fn, variables, images, targets,
                               key=jax.random.key(0), num_samples=samples, noise_scale=scale)
    np.testing.assert_allclose(flat, 0.0, atol=1e-5)
    var = np.asarray(attribution.explain(
        "vargrad", apply_fn, variables, images, targets, key=jax.random.key(0),
        num_samples=samples, noise_scale=scale, base="gradient_x_input"))
    # (x + sigma e) w over the samples: variance sigma^2 w^2 (sample variance of e ~ 1).
    sigma = scale * (images.max(axis=(1, 2, 3)) - images.min(axis=(1, 2, 3)))
    expected = (sigma[:, None, None, None] * weight_images(variables, SHAPE, targets)) ** 2
    assert np.all(np.abs(var - expected) <= 5 * np.sqrt(2 / samples) * expected + 1e-7)


@pytest.mark.parametrize("options, message", [
    ({"num_samples": 1}, "num_samples must be an int >= 2 for a variance; got 1"),
    ({"base": "smoothgrad"}, "base must be another method than smoothgrad or vargrad"),
    ({"noise_scale": -0.1}, "noise_scale must be a number >= 0; got -0.1"),
])
def test_bad_options_fail_at_build(options, message):
    apply_fn, variables = linear_model(SHAPE, 3)
    with pytest.raises(ValueError, match=message):
        attribution.build("vargrad", apply_fn, variables, SHAPE, **options)
