"""The public API: names, validation, targets, build_many, explain's cache, dependencies."""

import dataclasses
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from tests.attribution._models import linear_model, weight_images
from tests.attribution._zoo import TupleOutput, linen_init

SHAPE = (4, 3, 1)
ENGINE_METHODS = ["gradient", "gradient_x_input", "integrated_gradients", "occlusion", "smoothgrad"]


@pytest.fixture
def linear():
    apply_fn, variables = linear_model(SHAPE, num_classes=5)
    images = jnp.asarray(np.random.default_rng(0).uniform(size=(3, *SHAPE)), jnp.float32)
    return apply_fn, variables, images


def test_names_lists_registered_methods_sorted():
    names = attribution.names()
    assert names == sorted(names)
    assert set(ENGINE_METHODS) <= set(names)
    assert attribution.get("integrated_gradients").defaults == {
        "steps": 64, "baseline": 0.0, "rule": "midpoint", "chunk_size": None}


def test_unknown_method_lists_valid_ones(linear):
    apply_fn, variables, images = linear
    with pytest.raises(ValueError,
                       match="'gradiant'.*valid methods: .*gradient, gradient_shap, gradient_x"):
        attribution.build("gradiant", apply_fn, variables, SHAPE)
    with pytest.raises(ValueError, match="valid methods"):
        attribution.explain("gradiant", apply_fn, variables, images, None)


def test_unknown_option_lists_valid_ones(linear):
    apply_fn, variables, images = linear
    valid = "valid options: baseline, chunk_size, rule, steps"
    with pytest.raises(ValueError, match=f"'step'.*{valid}"):
        attribution.build("integrated_gradients", apply_fn, variables, SHAPE, step=3)
    with pytest.raises(ValueError, match="valid options: \\(none\\)"):
        attribution.explain("gradient", apply_fn, variables, images, None, steps=3)
    with pytest.raises(ValueError, match="'windw'"):
        attribution.build_many({"gradient": {}, "occlusion": {"windw": 2}}, apply_fn, variables,
                               SHAPE)


def test_bad_model_or_shape_raises(linear):
    apply_fn, variables, _ = linear
    with pytest.raises(ValueError, match="input_shape"):
        attribution.build("gradient", apply_fn, variables, (4, 3))
    with pytest.raises(ValueError, match="logits"):
        attribution.build("gradient", lambda v, x: x.sum(axis=(1, 2)).ravel(), variables, SHAPE)
    with pytest.raises(ValueError, match="model"):
        attribution.build("gradient", "not a model", variables, SHAPE)


def test_targets_label_predicted_or_any_class(linear):
    apply_fn, variables, images = linear
    # Any class per example: the gradient is that class's weight row.
    for targets in ([0, 1, 2], [4, 4, 3]):
        maps = attribution.explain("gradient", apply_fn, variables, images, np.array(targets))
        np.testing.assert_array_equal(maps, weight_images(variables, SHAPE, targets))
    # None explains the predicted class.
    predicted = attribution.predicted_targets(apply_fn, variables, images)
    np.testing.assert_array_equal(predicted, np.argmax(apply_fn(variables, images), axis=1))
    assert predicted.dtype == jnp.int32
    np.testing.assert_array_equal(
        attribution.explain("gradient", apply_fn, variables, images, None),
        weight_images(variables, SHAPE, predicted))


@pytest.mark.parametrize("targets", [[0, 1], [0, 1, 5], [-1, 0, 0], [0.0, 1.0, 2.0]])
def test_bad_targets_raise(linear, targets):
    apply_fn, variables, images = linear
    with pytest.raises(ValueError, match="targets"):
        attribution.explain("gradient", apply_fn, variables, images, np.array(targets))


def test_explain_compiles_once_per_model_method_options_and_shape(linear):
    _, variables, images = linear
    traces = [0]

    def apply_fn(variables, x):
        traces[0] += 1  # Runs only while tracing.
        return x.reshape(x.shape[0], -1) @ variables["w"] + variables["b"]

    targets = jnp.array([0, 1, 2])
    first = attribution.explain("integrated_gradients", apply_fn, variables, images, targets,
                                steps=4)
    after_first = traces[0]
    other = jax.tree.map(lambda a: a + 1.0, variables)
    second = attribution.explain("integrated_gradients", apply_fn, other, images + 0.5,
                                 targets[::-1], steps=4)
    assert traces[0] == after_first, "a repeated call retraced"
    assert not np.allclose(first, second)
    attribution.explain("integrated_gradients", apply_fn, variables, images, targets, steps=5)
    assert traces[0] > after_first, "different options reused a cached function"


@pytest.mark.slow
def test_build_many_runs_all_methods_in_one_function(linear):
    apply_fn, variables, images = linear
    methods = {"gradient": {}, "occlusion": {"window": 2},
               "smoothgrad": {"base": "gradient_x_input", "num_samples": 3}}
    fn = jax.jit(attribution.build_many(methods, apply_fn, variables, SHAPE))
    targets = jnp.array([1, 0, 3])
    maps = fn(variables, images, targets, jax.random.key(0))
    assert set(maps) == set(methods)
    for name, options in methods.items():
        if not attribution.get(name).stochastic:
            single = jax.jit(attribution.build(name, apply_fn, variables, SHAPE, **options))
            np.testing.assert_allclose(maps[name], single(variables, images, targets, None),
                                       rtol=1e-6)
    again = fn(variables, images, targets, jax.random.key(1))
    np.testing.assert_array_equal(again["gradient"], maps["gradient"])
    assert not np.allclose(again["smoothgrad"], maps["smoothgrad"])


@pytest.mark.slow
def test_attribution_imports_neither_tensorflow_nor_trainer():
    code = (
        "import sys, attribution\n"
        "attribution.names()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'trainer', 'configs', 'callbacks'))\n"
        "sys.exit(str(bad) if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_keys():
    key = jax.random.key(4)
    keys = attribution.example_keys(key, 3)
    assert keys.shape == (3,)
    for n in range(3):
        np.testing.assert_array_equal(jax.random.key_data(keys[n]),
                                      jax.random.key_data(jax.random.fold_in(key, n)))
    assert attribution.example_keys(keys, 3) is keys  # Already one per example.
    raw = attribution.example_keys(jax.random.PRNGKey(4), 3)  # Raw uint32 keys are wrapped.
    np.testing.assert_array_equal(jax.random.key_data(raw), jax.random.key_data(keys))
    with pytest.raises(ValueError, match=r"one per example \(3\); got keys of shape \(2,\)"):
        attribution.example_keys(jax.random.split(key), 3)


def test_num_classes_is_the_width_of_the_picked_logits():
    """Known when the classifier is made (the model traced once), and the same as traced anew."""
    model = TupleOutput()
    variables = linen_init(model, (8, 8, 1))
    for options, width in (({"logits": 0}, 10), ({"logits": 1}, 16),
                           ({"logits": 0, "preprocess": lambda x: 2 * x - 1}, 10),
                           ({"logits": lambda out: out[1][:, :3]}, 3)):
        classifier = attribution.as_classifier(model, variables, (8, 8, 1), **options)
        fresh = dataclasses.replace(classifier)  # No prefilled value: computed by tracing.
        assert classifier.num_classes == fresh.num_classes == width, options
        logits = classifier.logits(variables, jnp.zeros((2, 8, 8, 1)))
        assert logits.shape == (2, width), options
