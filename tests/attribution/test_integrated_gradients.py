"""Integrated gradients: exact on a linear model, complete on a trained CNN, chunk-invariant."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from tests.attribution._models import TinyReluNet, linear_model, random_variables, weight_images

SHAPE = (6, 5, 2)
MNIST = (28, 28, 1)


@pytest.mark.parametrize("baseline", [0.0, 0.5, "image"])
def test_linear_model_gets_input_minus_baseline_times_weights(baseline):
    apply_fn, variables = linear_model(SHAPE, num_classes=4)
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.uniform(size=(3, *SHAPE)), jnp.float32)
    if baseline == "image":
        baseline = rng.uniform(size=SHAPE[1:]).astype(np.float32)  # Broadcasts over rows.
    targets = jnp.array([3, 0, 2])
    maps = attribution.explain("integrated_gradients", apply_fn, variables, images, targets,
                               steps=20, baseline=baseline, chunk_size=6)
    expected = (np.asarray(images) - baseline) * weight_images(variables, SHAPE, targets)
    # Exact but for the rounding of summing 20 equal gradients.
    np.testing.assert_allclose(maps, expected, rtol=1e-6, atol=1e-7)


@pytest.fixture(scope="module")
def ig_setup(trained_cnn, digits):
    model, variables = trained_cnn
    images, labels = digits
    images, labels = jnp.asarray(images[::8]), jnp.asarray(labels[::8])  # 8 digits, 8 classes.
    fn = attribution.build("integrated_gradients", model, variables, MNIST, steps=128,
                           chunk_size=32)
    maps = jax.jit(fn)(variables, images, labels, jax.random.key(0))
    return model, variables, images, labels, np.asarray(maps)


def test_completeness_on_trained_cnn(ig_setup):
    """|sum(map) - (f(x) - f(0))| < 1% of |f(x) - f(0)| for every digit, at 128 steps."""
    model, variables, images, labels, maps = ig_setup
    logits = jax.jit(model.apply)(variables, jnp.concatenate([images, jnp.zeros_like(images)]))
    target = np.asarray(logits)[np.arange(16), np.tile(np.asarray(labels), 2)]
    expected = target[:8] - target[8:]
    gap = np.abs(maps.sum(axis=(1, 2, 3)) - expected)
    assert np.all(gap < 0.01 * np.abs(expected)), gap / np.abs(expected)


def test_chunk_size_does_not_change_result():
    model = TinyReluNet()
    variables = random_variables(model, SHAPE, seed=1)
    images = jnp.asarray(np.random.default_rng(2).uniform(size=(3, *SHAPE)), jnp.float32)
    args = (variables, images, jnp.array([0, 3, 1]), jax.random.key(0))

    def run(chunk_size):
        fn = attribution.build("integrated_gradients", model, variables, SHAPE, steps=32,
                               chunk_size=chunk_size)
        return np.asarray(jax.jit(fn)(*args))

    # 3 digits x 32 steps = 96 images in one pass, and in 5 scanned chunks of 20 (4 of them
    # padding), which split a path point's batch of digits.
    whole, chunked = run(96), run(20)
    # Only the order of summing the 32 gradients differs.
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6 * np.abs(whole).max())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"steps": 0}, "steps"),
        ({"chunk_size": 2.5}, "chunk_size"),
        ({"baseline": np.zeros((3, 3))}, "baseline"),
    ],
)
def test_bad_options_raise(options, message):
    apply_fn, variables = linear_model(SHAPE, num_classes=4)
    with pytest.raises(ValueError, match=message):
        attribution.build("integrated_gradients", apply_fn, variables, SHAPE, **options)
