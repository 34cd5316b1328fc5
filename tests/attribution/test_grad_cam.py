"""Grad-CAM against its formula, computed by hand from captured activations and the params."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from tests.attribution._models import random_variables
from trainer.models import CNN, CNNGAP, MLP


def _images(n, shape=(8, 8, 1)):
    return jnp.asarray(np.random.default_rng(1).uniform(size=(n, *shape)), jnp.float32)


def _conv_output(model, variables, images, layer):
    _, state = model.apply(variables, images, capture_intermediates=True)
    return np.asarray(state["intermediates"][layer]["__call__"][0])


def _upsample(maps, images):
    n, height, width, channels = images.shape
    up = jax.image.resize(jnp.asarray(maps), (n, height, width), method="bilinear")
    return np.repeat(np.asarray(up)[..., None], channels, axis=-1)


def grad_cam_by_hand(model, variables, images, targets):
    """CNNGAP's head is mean(relu(A)) @ W + b, so d logit_t / dA = relu'(A) W[:, t] / (h w)."""
    a = _conv_output(model, variables, images, f"Conv_{len(model.features) - 1}")
    w = np.asarray(variables["params"]["Dense_0"]["kernel"])[:, targets].T  # [N, K]
    grads = (a > 0) * w[:, None, None, :] / (a.shape[1] * a.shape[2])
    alpha = grads.mean(axis=(1, 2))
    return _upsample(np.maximum(np.einsum("nhwk,nk->nhw", a, alpha), 0), images)


@pytest.fixture(scope="module")
def small_gap():
    model = CNNGAP(features=(4, 8))
    images = _images(4)
    return model, random_variables(model, (8, 8, 1), seed=0), images, jnp.array([0, 3, 5, 9])


def test_small_model_matches_formula(small_gap):
    model, variables, images, targets = small_gap
    maps = jax.jit(attribution.build("grad_cam", model, variables, (8, 8, 1)))(
        variables, images, targets, None)
    expected = grad_cam_by_hand(model, variables, np.asarray(images), np.asarray(targets))
    assert maps.shape == images.shape and maps.dtype == jnp.float32
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-7)
    assert np.ptp(expected) > 0


@pytest.mark.slow
def test_trained_model_matches_formula(trained_cnn_gap, digits):
    model, variables = trained_cnn_gap
    images, labels = digits[0][:8], digits[1][:8]
    fn = jax.jit(attribution.build("grad_cam", model, variables, images.shape[1:]))
    maps = fn(variables, images, labels, None)
    np.testing.assert_allclose(maps, grad_cam_by_hand(model, variables, images, labels),
                               rtol=1e-4, atol=1e-7)
    explicit = attribution.build("grad_cam", model, variables, images.shape[1:], layer="Conv_2")
    np.testing.assert_array_equal(maps, jax.jit(explicit)(variables, images, labels, None))


def test_flatten_head_runs():
    model = CNN(features=(4, 8), dense=16)
    images = _images(2)
    variables = random_variables(model, (8, 8, 1), seed=0)
    fn = jax.jit(attribution.build("grad_cam", model, variables, (8, 8, 1)))
    maps = fn(variables, images, jnp.array([1, 2]), None)
    assert maps.shape == images.shape and np.all(np.isfinite(maps)) and np.all(maps >= 0)


def test_mlp_raises_with_no_valid_layers():
    model = MLP(hidden=(8,))
    variables = random_variables(model, (8, 8, 1), seed=0)
    with pytest.raises(ValueError, match=r"spatial \[h, w, C\].*valid layers: none"):
        attribution.build("grad_cam", model, variables, (8, 8, 1))


@pytest.mark.parametrize("layer, message", [
    ("Conv_9", r"no such layer\); valid layers: Conv_0, Conv_1\.$"),
    ("Dense_0", r"output \[10\] is not \[h, w, C\]\); valid layers: Conv_0, Conv_1"),
])
def test_bad_layer_raises_listing_valid_layers(small_gap, layer, message):
    model, variables, _, _ = small_gap
    with pytest.raises(ValueError, match=message):
        attribution.build("grad_cam", model, variables, (8, 8, 1), layer=layer)


class SharedConv(nn.Module):
    def setup(self):
        self.conv = nn.Conv(1, (3, 3))
        self.head = nn.Dense(3)

    def __call__(self, x):
        x = nn.relu(self.conv(nn.relu(self.conv(x))))
        return self.head(x.mean(axis=(1, 2)))


def test_layer_called_twice_raises():
    model = SharedConv()
    variables = random_variables(model, (8, 8, 1), seed=0)
    with pytest.raises(ValueError, match="'conv' is called 2 times"):
        attribution.build("grad_cam", model, variables, (8, 8, 1), layer="conv")
