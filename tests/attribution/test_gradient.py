"""Gradient and gradient x input against analytic and finite-difference references."""

import jax
import jax.numpy as jnp
import numpy as np

import attribution
from tests.attribution._models import (
    TinyReluNet,
    linear_model,
    random_variables,
    weight_images,
)

SHAPE = (5, 4, 2)


def test_gradient_of_linear_model_is_weight_row():
    apply_fn, variables = linear_model(SHAPE, num_classes=3)
    images = jnp.asarray(np.random.default_rng(1).uniform(size=(4, *SHAPE)), jnp.float32)
    targets = jnp.array([0, 2, 1, 2])
    maps = attribution.explain("gradient", apply_fn, variables, images, targets)
    np.testing.assert_array_equal(maps, weight_images(variables, SHAPE, targets))


def test_gradient_x_input_of_linear_model_is_each_pixels_contribution():
    apply_fn, variables = linear_model(SHAPE, num_classes=3)
    images = jnp.asarray(np.random.default_rng(2).uniform(size=(4, *SHAPE)), jnp.float32)
    targets = jnp.array([1, 1, 0, 2])
    maps = attribution.explain("gradient_x_input", apply_fn, variables, images, targets)
    expected = np.asarray(images) * weight_images(variables, SHAPE, targets)
    np.testing.assert_allclose(maps, expected, rtol=1e-6)
    # The contributions plus the bias make up the logit.
    logits = apply_fn(variables, images)[jnp.arange(4), targets]
    bias = np.asarray(variables["b"])[np.asarray(targets)]
    np.testing.assert_allclose(maps.sum(axis=(1, 2, 3)) + bias, logits, rtol=1e-5)


def test_gradient_of_relu_net_matches_central_differences():
    """In float64 a ReLU net is linear within +-1e-6 of a point off its kinks, so central
    differences are exact up to rounding (about 1e-10 here)."""
    with jax.enable_x64(True):
        model = TinyReluNet()
        images = jnp.asarray(np.random.default_rng(3).uniform(-1, 1, size=(2, *SHAPE)))
        variables = random_variables(model, SHAPE, seed=4, dtype=jnp.float64)
        targets = jnp.array([1, 3])
        maps = jax.jit(attribution.build("gradient", model, variables, SHAPE))(
            variables, images, targets, jax.random.key(0))
        assert maps.dtype == jnp.float64

        eps = 1e-6
        steps = eps * np.eye(images[0].size).reshape(-1, 1, *SHAPE)  # [P, 1, H, W, C]
        shifted = np.concatenate([images + steps, images - steps])  # [2P, N, H, W, C]
        logits = jax.jit(model.apply)(variables, shifted.reshape(-1, *SHAPE)).reshape(2, -1, 2, 4)
        target_logits = np.asarray(logits)[:, :, np.arange(2), targets]  # [2, P, N]
        differences = ((target_logits[0] - target_logits[1]) / (2 * eps)).T.reshape(images.shape)
    np.testing.assert_allclose(maps, differences, rtol=1e-7, atol=1e-8)
    assert np.abs(np.asarray(maps)).max() > 1e-3
