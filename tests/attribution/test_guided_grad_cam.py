"""Guided Grad-CAM is guided backprop times the upsampled Grad-CAM map."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from tests.attribution._models import random_variables
from trainer.models import CNNGAP, MLP


@pytest.mark.slow
@pytest.mark.parametrize("layer", [None, "Conv_0"])
def test_equals_product_of_parts(layer):
    model = CNNGAP(features=(4, 8))
    images = jnp.asarray(np.random.default_rng(1).uniform(size=(3, 8, 8, 2)), jnp.float32)
    variables = random_variables(model, (8, 8, 2), seed=0)
    targets = jnp.array([0, 4, 7])

    def run(method, **options):
        fn = jax.jit(attribution.build(method, model, variables, (8, 8, 2), **options))
        return np.asarray(fn(variables, images, targets, jax.random.key(0)))

    guided, cam = run("guided_backprop"), run("grad_cam", layer=layer)
    maps = run("guided_grad_cam", layer=layer)
    np.testing.assert_allclose(maps, guided * cam, rtol=1e-5, atol=1e-12)
    assert np.any(maps != 0)


def test_mlp_raises():
    model = MLP(hidden=(8,))
    variables = random_variables(model, (8, 8, 1), seed=0)
    with pytest.raises(ValueError, match="guided_grad_cam needs a layer with a spatial"):
        attribution.build("guided_grad_cam", model, variables, (8, 8, 1))
