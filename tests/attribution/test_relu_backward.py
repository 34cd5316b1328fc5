"""Guided backprop and DeconvNet against a backward pass written by hand."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.nn import relu  # Imported by name: the rewrite must still find it.

import attribution
from attribution.relu_backward import replace_relu_backward
from tests.attribution._models import random_variables

INPUT_SHAPE = (3, 3, 2)


class TwoLayer(nn.Module):
    """x -> relu(dense) -> relu(dense) -> dense, with `relu` imported by name."""

    @nn.compact
    def __call__(self, x):
        x = x.reshape((x.shape[0], -1))
        x = relu(nn.Dense(6)(x))
        x = relu(nn.Dense(5)(x))
        return nn.Dense(4)(x)


def _reference(params, images, targets, rule):
    """The rule's backward pass through the same net, as plain matrices."""
    w1, b1 = params["Dense_0"]["kernel"], params["Dense_0"]["bias"]
    w2, b2 = params["Dense_1"]["kernel"], params["Dense_1"]["bias"]
    w3 = params["Dense_2"]["kernel"]
    x = images.reshape(images.shape[0], -1)
    z1 = x @ w1 + b1
    z2 = relu(z1) @ w2 + b2

    def through_relu(z, g):
        if rule == "guided":
            return g * (z > 0) * (g > 0)
        return np.maximum(g, 0)

    g = w3[:, targets].T  # d logit / d relu(z2), [N, 5]
    g = through_relu(z2, g) @ w2.T
    g = through_relu(z1, g) @ w1.T
    return g.reshape(images.shape)


@pytest.fixture(scope="module")
def net():
    model = TwoLayer()
    images = jnp.asarray(np.random.default_rng(1).standard_normal((8, *INPUT_SHAPE)), jnp.float32)
    variables = random_variables(model, INPUT_SHAPE, seed=0)
    targets = jnp.arange(8, dtype=jnp.int32) % 4
    return model, variables, images, targets


@pytest.mark.parametrize("method, rule", [("guided_backprop", "guided"),
                                          ("deconvnet", "deconvnet")])
def test_matches_hand_written_backward_pass(net, method, rule):
    model, variables, images, targets = net
    fn = jax.jit(attribution.build(method, model, variables, INPUT_SHAPE))
    maps = fn(variables, images, targets, jax.random.key(0))
    expected = _reference(jax.tree.map(np.asarray, variables["params"]), np.asarray(images),
                          np.asarray(targets), rule)
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)
    plain = jax.jit(attribution.build("gradient", model, variables, INPUT_SHAPE))(
        variables, images, targets, None)
    assert not np.allclose(maps, plain, atol=1e-4)  # The rule really changed the backward pass.


@pytest.mark.parametrize("rule", ["guided", "deconvnet"])
def test_plain_maximum_forward_unchanged_and_vmappable(rule):
    rng = np.random.default_rng(2)
    w1, w2 = jnp.asarray(rng.standard_normal((4, 6))), jnp.asarray(rng.standard_normal(6))

    def f(w1, x):
        return jnp.maximum(x @ w1, 0.0) @ w2

    x = jnp.asarray(rng.standard_normal(4))
    g = replace_relu_backward(f, rule, (w1, x))
    np.testing.assert_allclose(g(w1, x), f(w1, x), rtol=1e-6)
    z, up = x @ w1, w2
    down = up * (z > 0) * (up > 0) if rule == "guided" else jnp.maximum(up, 0)
    np.testing.assert_allclose(jax.grad(g, 1)(w1, x), w1 @ down, rtol=1e-5, atol=1e-6)
    xs = jnp.stack([x, -x, 2 * x])
    batched = jax.jit(jax.vmap(jax.grad(g, 1), (None, 0)))(w1, xs)
    for i in range(3):
        np.testing.assert_allclose(batched[i], jax.grad(g, 1)(w1, xs[i]), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_relu_inside_scan_and_jit_matches_unrolled():
    rng = np.random.default_rng(3)
    w, x = jnp.asarray(rng.standard_normal((5, 5))), jnp.asarray(rng.standard_normal(5))

    def scanned(w, x):
        body = jax.jit(lambda h, _: (jax.nn.relu(h @ w) - 0.1, None))
        return jnp.sum(jnp.sin(jax.lax.scan(body, x, None, length=3)[0]))

    def unrolled(w, x):
        for _ in range(3):
            x = jax.nn.relu(x @ w) - 0.1
        return jnp.sum(jnp.sin(x))

    a = jax.grad(replace_relu_backward(scanned, "guided", (w, x)), 1)(w, x)
    b = jax.grad(replace_relu_backward(unrolled, "guided", (w, x)), 1)(w, x)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(a, jax.grad(unrolled, 1)(w, x), atol=1e-4)


def test_model_without_relu_raises():
    # LayerNorm clamps its variance with max(0, var): that is not a ReLU.
    model = nn.Sequential([lambda x: x.reshape((x.shape[0], -1)), nn.LayerNorm(), jnp.tanh,
                           nn.Dense(3)])
    variables = random_variables(model, INPUT_SHAPE, seed=0)
    with pytest.raises(ValueError, match="needs ReLUs"):
        attribution.build("guided_backprop", model, variables, INPUT_SHAPE)


def test_unknown_rule_raises():
    with pytest.raises(ValueError, match="guided, deconvnet"):
        replace_relu_backward(jax.nn.relu, "lrp", (jnp.zeros(3),))
