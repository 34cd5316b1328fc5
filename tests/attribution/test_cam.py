"""CAM against sum_k w_{k,c} relu(A_k), computed from captured activations and the params."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from tests.attribution._models import random_variables
from trainer.models import CNN, CNNGAP


def cam_by_hand(model, variables, images, targets):
    _, state = model.apply(variables, images, capture_intermediates=True)
    a = np.asarray(state["intermediates"][f"Conv_{len(model.features) - 1}"]["__call__"][0])
    w = np.asarray(variables["params"]["Dense_0"]["kernel"])[:, targets].T  # [N, K]
    cam = np.einsum("nhwk,nk->nhw", np.maximum(a, 0), w)
    n, height, width, channels = images.shape
    up = np.asarray(jax.image.resize(jnp.asarray(cam), (n, height, width), method="bilinear"))
    return np.repeat(up[..., None], channels, axis=-1)


def test_small_model_matches_formula():
    model = CNNGAP(features=(4, 8))
    images = jnp.asarray(np.random.default_rng(1).uniform(size=(4, 8, 8, 1)), jnp.float32)
    variables = random_variables(model, (8, 8, 1), seed=0)
    targets = jnp.array([0, 3, 5, 9])
    maps = jax.jit(attribution.build("cam", model, variables, (8, 8, 1)))(
        variables, images, targets, None)
    expected = cam_by_hand(model, variables, np.asarray(images), np.asarray(targets))
    assert maps.shape == images.shape and maps.dtype == jnp.float32
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)
    assert expected.min() < 0 < expected.max()  # Signed, as documented.


@pytest.mark.slow
def test_trained_model_matches_formula(trained_cnn_gap, digits):
    model, variables = trained_cnn_gap
    images, labels = digits[0][:8], digits[1][:8]
    maps = jax.jit(attribution.build("cam", model, variables, images.shape[1:]))(
        variables, images, labels, None)
    np.testing.assert_allclose(maps, cam_by_hand(model, variables, images, labels),
                               rtol=1e-4, atol=1e-5)
    # The class's own evidence outweighs another class's on a digit the model knows.
    other = (labels + 1) % 10
    other_maps = jax.jit(attribution.build("cam", model, variables, images.shape[1:]))(
        variables, images, other, None)
    assert np.mean(maps.sum(axis=(1, 2, 3)) > other_maps.sum(axis=(1, 2, 3))) >= 0.75


@pytest.mark.slow
def test_flatten_head_raises():
    model = CNN(features=(4, 8), dense=16)
    variables = random_variables(model, (8, 8, 1), seed=0)
    with pytest.raises(ValueError, match="global-average-pool \\+ dense head after layer 'Conv_1'"):
        attribution.build("cam", model, variables, (8, 8, 1))


@pytest.mark.slow
def test_layer_not_feeding_the_pool_raises():
    model = CNNGAP(features=(4, 8))
    variables = random_variables(model, (8, 8, 1), seed=0)
    with pytest.raises(ValueError, match="global-average-pool"):
        attribution.build("cam", model, variables, (8, 8, 1), layer="Conv_0")


@pytest.mark.slow
@pytest.mark.parametrize("model, applies", [(CNN(features=(4, 8), dense=16), False),
                                             (CNNGAP(features=(4, 8)), True)])
def test_shape_only_variables_checked_with_random_params(model, applies):
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 8, 8, 1)))
    if applies:
        assert callable(attribution.build("cam", model, shapes, (8, 8, 1)))
    else:
        with pytest.raises(ValueError, match="global-average-pool"):
            attribution.build("cam", model, shapes, (8, 8, 1))
