"""SmoothGrad: reduces to its base without noise, squares on request, follows its key."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from tests.attribution._models import TinyReluNet, linear_model, random_variables

SHAPE = (6, 5, 2)
TARGETS = jnp.array([0, 3, 1])


@pytest.fixture(scope="module")
def net():
    """`run(method, key, **options)` on a small ReLU net; compiles once per method and options."""
    model = TinyReluNet()
    variables = random_variables(model, SHAPE, seed=0)
    images = jnp.asarray(np.random.default_rng(1).uniform(size=(3, *SHAPE)), jnp.float32)
    compiled = {}

    def run(method, key, **options):
        cache_key = (method, repr(sorted(options.items())))
        if cache_key not in compiled:
            compiled[cache_key] = jax.jit(
                attribution.build(method, model, variables, SHAPE, **options))
        return np.asarray(compiled[cache_key](variables, images, TARGETS, key))

    return run


KEY = jax.random.key(0)
NOISY = {"num_samples": 8, "noise_scale": 0.2, "chunk_size": 3}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("base", "base_options", "squared"),
    [("gradient", None, False), ("gradient", None, True), ("occlusion", {"window": 2}, False)],
)
def test_zero_noise_equals_base_method(net, base, base_options, squared):
    smooth = net("smoothgrad", KEY, base=base, base_options=base_options, noise_scale=0.0,
                 num_samples=4, chunk_size=3, squared=squared)
    plain = net(base, KEY, **(base_options or {}))
    expected = np.square(plain) if squared else plain
    # The mean of 4 equal maps; the base ran on chunks of 3 noisy images in a loop. An
    # occlusion drop is a difference of two logits of size ~1, computed in batches of other
    # sizes here: float32 cancellation leaves ~1e-7.
    atol = 1e-7 * np.abs(expected).max() + (1e-6 if base == "occlusion" else 0.0)
    np.testing.assert_allclose(smooth, expected, rtol=1e-6, atol=atol)


@pytest.mark.slow
def test_squared_is_mean_of_squares_not_square_of_mean(net):
    squared, plain = net("smoothgrad", KEY, squared=True, **NOISY), net("smoothgrad", KEY, **NOISY)
    assert np.all(squared >= np.square(plain) * (1 - 1e-5))  # Jensen's inequality.
    assert np.any(squared > np.square(plain) * 1.01), "noise had no effect"


def test_same_key_same_result_other_key_other_result(net):
    first = net("smoothgrad", jax.random.key(5), **NOISY)
    np.testing.assert_array_equal(first, net("smoothgrad", jax.random.key(5), **NOISY))
    assert not np.allclose(first, net("smoothgrad", jax.random.key(6), **NOISY))


@pytest.mark.slow
def test_chunk_size_does_not_change_result(net):
    # The noise of sample s in slot n depends on the key, s and n alone, so only the summation
    # order changes: 3 images x 8 samples in chunks of 3, of 5 (with padding), and at once.
    chunked = net("smoothgrad", KEY, **NOISY)
    whole = net("smoothgrad", KEY, **{**NOISY, "chunk_size": 24})
    np.testing.assert_allclose(net("smoothgrad", KEY, **{**NOISY, "chunk_size": 5}), whole,
                               rtol=1e-5, atol=1e-6 * np.abs(whole).max())
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6 * np.abs(whole).max())


def test_noise_scale_is_relative_to_each_images_range():
    """With gradient x input of f(x) = sum(x), squared, E[(x + e)^2] = x^2 + sigma^2."""
    shape = (8, 8, 1)
    apply_fn, variables = linear_model(shape, num_classes=1)
    variables = {"w": jnp.ones_like(variables["w"]), "b": variables["b"]}
    rng = np.random.default_rng(3)
    images = np.stack([rng.uniform(0, 1, shape), rng.uniform(-2, 2, shape)]).astype(np.float32)
    maps = attribution.explain("smoothgrad", apply_fn, variables, images, jnp.zeros(2, jnp.int32),
                               base="gradient_x_input", num_samples=256, noise_scale=0.1,
                               squared=True, chunk_size=64)
    variance = (np.asarray(maps) - images**2).mean(axis=(1, 2, 3))
    sigma = 0.1 * (images.max(axis=(1, 2, 3)) - images.min(axis=(1, 2, 3)))
    # 16,384 draws per image: the variance estimate is within about 4% (3 standard errors).
    np.testing.assert_allclose(variance, sigma**2, rtol=0.05)


def test_linear_model_gradient_is_unchanged_by_noise():
    apply_fn, variables = linear_model(SHAPE, num_classes=4)
    images = jnp.asarray(np.random.default_rng(4).uniform(size=(3, *SHAPE)), jnp.float32)
    smooth = attribution.explain("smoothgrad", apply_fn, variables, images, TARGETS,
                                 num_samples=5, noise_scale=0.5)
    plain = attribution.explain("gradient", apply_fn, variables, images, TARGETS)
    np.testing.assert_allclose(smooth, plain, rtol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"base": "smoothgrad"}, "smoothgrad"),
        ({"base": "nope"}, "valid methods"),
        ({"base_options": {"steps": 4}}, "valid options"),
        ({"num_samples": 0}, "num_samples"),
        ({"noise_scale": -0.1}, "noise_scale"),
    ],
)
def test_bad_options_raise(options, message):
    apply_fn, variables = linear_model(SHAPE, num_classes=4)
    with pytest.raises(ValueError, match=message):
        attribution.build("smoothgrad", apply_fn, variables, SHAPE, **options)
