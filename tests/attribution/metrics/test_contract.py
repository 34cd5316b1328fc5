"""Every registered metric, on a trained CNN and real digits: finite, deterministic for a key,
independent of the batch a probe is in; the registry and option checks."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attribution
import attribution.metrics as metrics
from attribution.metric import FAMILIES


@pytest.fixture(scope="module")
def setup(trained_cnn, digits):
    model, variables = trained_cnn
    images, labels = jnp.asarray(digits[0][:12]), jnp.asarray(digits[1][:12], jnp.int32)
    classifier = attribution.as_classifier(model, variables, (28, 28, 1))
    explain = attribution.build("integrated_gradients", model, variables, (28, 28, 1), steps=8)
    maps = jax.jit(explain)(variables, images, labels, jax.random.key(0))
    return classifier, variables, images, labels, maps, explain


FAST = {"faithfulness_correlation": {"num_runs": 8}, "pixel_flipping": {"features_in_step": 56},
        "monotonicity": {"features_in_step": 56}, "non_sensitivity": {"features_in_step": 28},
        "infidelity": {"num_samples": 4}, "max_sensitivity": {"num_samples": 2},
        "avg_sensitivity": {"num_samples": 2}, "local_lipschitz_estimate": {"num_samples": 2},
        "road": {"percentages": (10, 50, 90)}, "irof": {"segment_size": 7},
        "sic": {"thresholds": (0.1, 0.5)}, "aic": {"thresholds": (0.1, 0.5)}}


# Each metric's scores of the first six probes, kept for `test_a_batch_of_one`.
WHOLE: dict[str, np.ndarray] = {}


def _keys():
    return jax.vmap(lambda n: jax.random.fold_in(jax.random.key(7), n))(jnp.arange(12))


@pytest.mark.parametrize("name", metrics.names())
def test_finite_deterministic_and_batch_independent(setup, name):
    classifier, variables, images, labels, maps, explain = setup
    fn = metrics.build(name, classifier, **FAST.get(name, {}))
    run = jax.jit(lambda v, x, t, m, k: metrics.evaluate({name: fn}, v, x, t, m, explain, k,
                                                         method_key=k)[name])
    keys = _keys()
    first = slice(0, 6)
    whole = np.asarray(run(variables, images[first], labels[first], maps[first], keys[first]))
    # NaN only where a metric skips a probe by its definition (PIC: PAIR's skip rules).
    skips = name in ("sic", "aic")
    assert whole.shape == (6,) and (np.isfinite(whole) | (skips & np.isnan(whole))).all()
    np.testing.assert_array_equal(whole, np.asarray(
        run(variables, images[first], labels[first], maps[first], keys[first])))
    # Probes 2 and 3 (with their keys) at the end of a batch of other digits, of the same
    # shape (no new compile): the same scores.
    mixed = np.r_[6:10, 2:4]
    part = np.asarray(run(variables, images[mixed], labels[mixed], maps[mixed], keys[mixed]))
    np.testing.assert_allclose(part[4:], whole[2:4], rtol=2e-3, atol=2e-4)
    WHOLE[name] = whole


@pytest.mark.slow
def test_a_batch_of_one(setup):
    """Every metric on a batch of one probe, all in one program (one compile): that probe's
    score from the batch of six (scored here where the test above did not run)."""
    classifier, variables, images, labels, maps, explain = setup
    keys = _keys()
    fns = {name: metrics.build(name, classifier, **FAST.get(name, {})) for name in metrics.names()}

    def each(fns, v, x, t, m, k):
        # One `evaluate` per metric: metric i of an `evaluate` draws from `fold_in(key, i)`.
        return {name: metrics.evaluate({name: fn}, v, x, t, m, explain, k, method_key=k)[name]
                for name, fn in fns.items()}

    one = jax.jit(functools.partial(each, fns))(variables, images[3:4], labels[3:4], maps[3:4],
                                                keys[3:4])
    for name, fn in fns.items():
        if name not in WHOLE:
            WHOLE[name] = np.asarray(jax.jit(functools.partial(each, {name: fn}))(
                variables, images[:6], labels[:6], maps[:6], keys[:6])[name])
        assert one[name].shape == (1,), name
        np.testing.assert_allclose(one[name][0], WHOLE[name][3], rtol=2e-3, atol=2e-4,
                                   err_msg=name)


def test_registry_families_and_sets():
    assert set(m.family for m in map(metrics.get, metrics.names())) == set(FAMILIES)
    assert metrics.expand(["complexity", "pointing_game", "sparseness"]) == [
        "complexity", "sparseness", "pointing_game"]
    with pytest.raises(ValueError, match="valid metrics: aic, avg_sensitivity, completeness"):
        metrics.get("pixel_flip")


@pytest.mark.parametrize("name, options, message", [
    ("sparseness", {"abs": True}, "valid options: none"),
    ("faithfulness_correlation", {"subset_size": 784}, "below the number of pixels"),
    ("pixel_flipping", {"output": "softmax"}, "valid outputs: logit, probability"),
    ("relevance_mass_accuracy", {"threshold": 1.5}, r"threshold must be a number in \[0.0"),
    ("max_sensitivity", {"radius": 0}, r"radius must be a number in \(0.0"),
    ("random_logit", {"similarity": "cosine"}, "valid similarities"),
    ("region_perturbation", {"patch_size": 40}, "must fit in the image"),
])
def test_bad_options_name_the_valid_values(setup, name, options, message):
    with pytest.raises(ValueError, match=message):
        metrics.build(name, setup[0], **options)
