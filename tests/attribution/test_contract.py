"""The contract every registered attribution method keeps; new methods enrol automatically.

Runs each method with its own defaults (layer methods find their layer themselves), except
that path and noise methods use few steps and samples, in small chunks that need padding.
"""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from tests.attribution._models import random_variables
from trainer.models import CNNGAP

INPUT_SHAPE = (16, 16, 1)
FAST = {"steps": 8, "num_samples": 4, "chunk_size": 3}
METHODS = attribution.names()


@pytest.fixture(scope="module")
def setup():
    model = CNNGAP(features=(4, 8, 8))
    variables = [random_variables(model, INPUT_SHAPE, seed) for seed in (0, 1)]
    rng = np.random.default_rng(2)
    images = [jnp.asarray(rng.uniform(size=(4, *INPUT_SHAPE)), jnp.float32) for _ in range(2)]
    template = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), variables[0])
    return {
        "model": model,
        "template": template,
        "variables": variables,
        "images": images,
        "targets": [jnp.array([3, 1, 4, 1], jnp.int32), jnp.array([5, 9, 2, 6], jnp.int32)],
        "cache": {},
    }


def _options(name: str) -> dict:
    defaults = attribution.get(name).defaults
    return {k: v for k, v in FAST.items() if k in defaults}


def _jitted(setup, name: str):
    """The method built once per module, jitted, with a counter of how often it is traced."""
    if name not in setup["cache"]:
        fn = attribution.build(name, setup["model"], setup["template"], INPUT_SHAPE,
                               **_options(name))
        traces = [0]

        def counted(variables, images, targets, key):
            traces[0] += 1  # Runs only while tracing.
            return fn(variables, images, targets, key)

        setup["cache"][name] = (jax.jit(counted), traces)
    return setup["cache"][name]


@pytest.mark.parametrize("name", METHODS)
def test_method_module_declares_itself(name):
    module = importlib.import_module(f"attribution.methods.{name}")
    method = attribution.get(name)
    assert module.METHOD is method and method.name == name
    assert module.__doc__ and len(module.__doc__.strip()) > 40, "the docstring cites the paper"
    for flag in (method.signed, method.stochastic, method.completeness):
        assert isinstance(flag, bool)


@pytest.mark.parametrize("name", METHODS)
def test_shape_dtype_finite(setup, name):
    fn, _ = _jitted(setup, name)
    maps = fn(setup["variables"][0], setup["images"][0], setup["targets"][0], jax.random.key(1))
    assert maps.shape == (4, *INPUT_SHAPE)
    assert maps.dtype == jnp.float32
    assert np.all(np.isfinite(maps))
    assert np.any(np.asarray(maps) != 0), "an all-zero map explains nothing"


@pytest.mark.parametrize("name", METHODS)
def test_compiles_once(setup, name):
    fn, traces = _jitted(setup, name)
    for i in (0, 1, 0):
        fn(setup["variables"][i], setup["images"][i], setup["targets"][i], jax.random.key(i))
    assert traces[0] == 1


@pytest.mark.parametrize("name", METHODS)
def test_deterministic_for_fixed_key(setup, name):
    fn, _ = _jitted(setup, name)
    args = (setup["variables"][0], setup["images"][0], setup["targets"][0])
    first = fn(*args, jax.random.key(7))
    np.testing.assert_array_equal(first, fn(*args, jax.random.key(7)))
    other = fn(*args, jax.random.key(8))
    if attribution.get(name).stochastic:
        assert not np.allclose(first, other), "a stochastic method ignored its key"
    else:
        np.testing.assert_array_equal(first, other)


# Probes of the first batch (row, position) mixed with probes of the second: each probe moves
# to another position among other neighbours, in a batch of the same shape (no new compile).
MIXES = [[(0, 3), (1, 0), (0, 1), (1, 2)], [(1, 1), (0, 0), (1, 3), (0, 2)]]


@pytest.mark.parametrize("name", METHODS)
def test_batch_independent(setup, name):
    """A probe's map is the same whatever the other probes of its batch and its position."""
    fn, _ = _jitted(setup, name)
    variables, images, targets = setup["variables"][0], setup["images"], setup["targets"]
    key = jax.random.key(3)
    batch = np.asarray(fn(variables, images[0], targets[0], key))
    scale = np.abs(batch).max()
    keys = [key, key]
    if attribution.get(name).stochastic:
        # Randomness per example: a single key stands for its per-example keys, and probes
        # that carry their keys along give the same maps (what devices rely on).
        keys = [attribution.example_keys(key, 4), attribution.example_keys(jax.random.key(4), 4)]
        np.testing.assert_array_equal(fn(variables, images[0], targets[0], keys[0]), batch)
    for mix in MIXES:

        def mixed(arrays, mix=mix):
            return jnp.stack([arrays[row][i] for row, i in mix])

        maps = fn(variables, mixed(images), mixed(targets),
                  mixed(keys) if keys[0].ndim else key)
        for position, (row, i) in enumerate(mix):
            if row == 0:
                np.testing.assert_allclose(maps[position], batch[i], rtol=1e-5,
                                           atol=1e-6 * scale)


@pytest.mark.slow
def test_a_batch_of_one(setup):
    """Every method on a batch of one probe (all in one program: one compile) gives that
    probe's map from the batch of four; stochastic methods with the probe's own key."""
    variables, images, targets = setup["variables"][0], setup["images"][0], setup["targets"][0]
    key = jax.random.key(3)
    keys = {name: attribution.example_keys(key, 4) if attribution.get(name).stochastic else key
            for name in METHODS}
    fns = {name: attribution.build(name, setup["model"], setup["template"], INPUT_SHAPE,
                                   **_options(name)) for name in METHODS}
    one = jax.jit(lambda v, x, t, k: {name: fn(v, x, t, k[name]) for name, fn in fns.items()})(
        variables, images[2:3], targets[2:3], {n: k[2:3] if k.ndim else k for n, k in keys.items()})
    for name in METHODS:
        batch = np.asarray(_jitted(setup, name)[0](variables, images, targets, keys[name]))
        assert one[name].shape == (1, *INPUT_SHAPE), name
        np.testing.assert_allclose(one[name][0], batch[2], rtol=1e-5,
                                   atol=1e-6 * np.abs(batch).max(), err_msg=name)


@pytest.mark.parametrize("name", [n for n in METHODS if attribution.get(n).completeness])
def test_completeness(setup, name):
    """sum(map) == f(x) - f(baseline), within 1%.

    A random net on noise images crosses many ReLU kinks along a path, and each costs the
    Riemann sum O(1/steps): path methods get 256 steps here (the trained-model check of
    integrated gradients is in its own test file).
    """
    defaults = attribution.get(name).defaults
    model, variables = setup["model"], setup["variables"][0]
    images, targets = setup["images"][0], setup["targets"][0]
    options = {"steps": 256} if "steps" in defaults else {}
    fn = attribution.build(name, model, variables, INPUT_SHAPE, **options)
    maps = jax.jit(fn)(variables, images, targets, jax.random.key(0))
    baseline = jnp.broadcast_to(jnp.asarray(defaults.get("baseline", 0.0)), images.shape)

    @jax.jit
    def target_logit(x):
        return jnp.take_along_axis(model.apply(variables, x), targets[:, None], axis=1)[:, 0]

    expected = np.asarray(target_logit(images) - target_logit(baseline))
    gap = np.abs(np.asarray(maps.sum(axis=(1, 2, 3))) - expected)
    assert np.all(gap < 0.01 * np.abs(expected)), (gap, expected)
