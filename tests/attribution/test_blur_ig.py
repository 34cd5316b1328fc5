"""Blur IG against PAIR saliency's algorithm written out with scipy, and its blur path."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

import attribution
from attribution.methods.blur_ig import blur_matrix
from tests.attribution._models import TinyReluNet, random_variables

SHAPE = (8, 8, 2)


@pytest.mark.parametrize("sigma", [0.0, 0.3, 1.7, 50.0])
def test_blur_matrices_are_scipys_gaussian_filter_with_zero_padding(sigma):
    image = np.random.default_rng(0).uniform(size=(9, 7))
    expected = ndimage.gaussian_filter(image, sigma, mode="constant") if sigma else image
    np.testing.assert_allclose(blur_matrix(9, sigma) @ image @ blur_matrix(7, sigma).T,
                               expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("sqrt", [False, True])
def test_matches_pair_saliencys_loop_written_with_scipy(sqrt):
    """PAIR's BlurIG.GetMask, one image at a time: blurred steps with scipy, gradients with
    jax, the forward difference along sigma, the sum times -1."""
    model = TinyReluNet()
    variables = random_variables(model, SHAPE, seed=1)
    images = np.random.default_rng(2).uniform(size=(3, *SHAPE)).astype(np.float32)
    targets = np.array([0, 3, 1])
    max_sigma, steps, grad_step = 6.0, 12, 0.01
    grad = jax.jit(jax.grad(lambda x, t: model.apply(variables, x[None])[0, t]))
    sigmas = [i * max_sigma / steps for i in range(steps + 1)]
    sigmas = np.sqrt(sigmas) if sqrt else np.asarray(sigmas)
    expected = []
    for x, t in zip(images.astype(np.float64), targets, strict=True):
        def blur(s, x=x):
            return ndimage.gaussian_filter(x, [s, s, 0], mode="constant") if s else x

        total = np.zeros_like(x)
        for i in range(steps):
            step = blur(sigmas[i])
            along = (blur(sigmas[i] + grad_step) - step) / grad_step
            total += (sigmas[i + 1] - sigmas[i]) * along * np.asarray(
                grad(jnp.asarray(step, jnp.float32), t))
        expected.append(-total)
    maps = attribution.explain("blur_ig", model, variables, images, targets,
                               max_sigma=max_sigma, steps=steps, grad_step=grad_step, sqrt=sqrt,
                               chunk_size=5)
    expected = np.stack(expected)
    assert np.abs(expected).max() > 0
    np.testing.assert_allclose(maps, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())


def test_bad_options_name_the_bad_value():
    model = TinyReluNet()
    variables = random_variables(model, SHAPE, seed=1)
    with pytest.raises(ValueError, match="max_sigma must be a number > 0; got 0"):
        attribution.build("blur_ig", model, variables, SHAPE, max_sigma=0)
