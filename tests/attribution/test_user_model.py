"""Every applicable method runs on a user's model that was never written for attribution."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from attribution import layers
from tests.attribution._models import random_variables

INPUT_SHAPE = (12, 12, 1)
# Only to keep the suite fast; every method also runs with its defaults elsewhere.
FAST = {"integrated_gradients": {"steps": 8}, "smoothgrad": {"num_samples": 4}}
LAYER_METHODS = ("cam", "grad_cam", "guided_grad_cam")


class Block(nn.Module):
    features: int

    @nn.compact
    def __call__(self, x):
        return nn.relu(nn.Conv(self.features, (3, 3))(x))


class UserNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = Block(4)(x)
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = Block(6)(x)
        return nn.Dense(5)(jnp.mean(x, axis=(1, 2)))


@pytest.fixture(scope="module")
def user_model():
    model = UserNet()
    images = jnp.asarray(np.random.default_rng(1).uniform(size=(3, *INPUT_SHAPE)), jnp.float32)
    return model, random_variables(model, INPUT_SHAPE, seed=0), images


def test_layer_names_are_nested_paths(user_model):
    model, variables, _ = user_model
    shapes = layers.layer_output_shapes(attribution.as_classifier(model, variables, INPUT_SHAPE))
    assert shapes == {"Block_0/Conv_0": (12, 12, 4), "Block_0": (12, 12, 4),
                      "Block_1/Conv_0": (6, 6, 6), "Block_1": (6, 6, 6), "Dense_0": (5,)}


@pytest.fixture(scope="module")
def every_method(user_model):
    """Every method's maps of the predicted classes, built together (`build_many`) and
    compiled as one program."""
    model, variables, images = user_model
    options = {m: dict(FAST.get(m, {}), **({"layer": "Block_1/Conv_0"} if m in LAYER_METHODS
                                          else {})) for m in attribution.names()}
    targets = attribution.predicted_targets(model, variables, images)
    fn = jax.jit(attribution.build_many(options, model, variables, INPUT_SHAPE))
    return jax.device_get(fn(variables, images, targets, jax.random.key(0)))


@pytest.mark.slow
@pytest.mark.parametrize("method", attribution.names())
def test_every_method_runs_unmodified(user_model, every_method, method):
    _, _, images = user_model
    maps = every_method[method]
    assert maps.shape == images.shape and maps.dtype == np.float32
    assert np.all(np.isfinite(maps)) and np.any(maps != 0)


def test_layer_gradient_through_plain_apply_function(user_model):
    """A perturbation at "Block_1" shifts the logits as its gradient says (linear head)."""
    model, variables, images = user_model
    classifier = attribution.as_classifier(lambda v, x: model.apply(v, x), variables, INPUT_SHAPE)
    targets = jnp.array([0, 1, 2])
    activation, grads = layers.layer_gradients(classifier, "Block_1")(variables, images, targets)
    _, state = model.apply(variables, images, capture_intermediates=True)
    np.testing.assert_array_equal(activation, state["intermediates"]["Block_1"]["__call__"][0])
    delta = 0.1 * np.random.default_rng(2).standard_normal(activation.shape).astype(np.float32)
    logits, _ = layers.perturbed_apply(classifier, "Block_1")(variables, images, delta)
    base = model.apply(variables, images)
    rows = jnp.arange(3)
    np.testing.assert_allclose(logits[rows, targets] - base[rows, targets],
                               jnp.sum(grads * delta, axis=(1, 2, 3)), rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_cam_needs_the_pooled_layer(user_model):
    model, variables, images = user_model
    with pytest.raises(ValueError, match="global-average-pool"):
        attribution.explain("cam", model, variables, images, layer="Block_0/Conv_0")
    maps = attribution.explain("grad_cam", model, variables, images, layer="Block_0/Conv_0")
    assert maps.shape == images.shape
