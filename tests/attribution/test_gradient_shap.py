"""GradientSHAP / expected gradients: integrated gradients in expectation over baselines."""

import jax
import numpy as np
import pytest

import attribution
from tests.attribution._models import TinyReluNet, linear_model, random_variables, weight_images

SHAPE = (4, 4, 1)


@pytest.mark.parametrize("stdevs", [0.0, 0.3])
def test_linear_model_expectation_is_ig_with_the_mean_baseline(stdevs):
    """The gradient is w everywhere, so each sample is (x + e - b) w: unbiased for (x - mean b) w.

    The tolerance is 5 standard errors of the sample mean of (e - b) w.
    """
    apply_fn, variables = linear_model(SHAPE, 3)
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(2, *SHAPE)).astype(np.float32)
    baselines = rng.uniform(size=(4, *SHAPE)).astype(np.float32)
    targets = np.array([2, 0])
    samples = 4096
    maps = attribution.explain("gradient_shap", apply_fn, variables, images, targets,
                               key=jax.random.key(1), baselines=baselines,
                               num_samples=samples, stdevs=stdevs)
    w = weight_images(variables, SHAPE, targets)
    expected = (images - baselines.mean(axis=0)) * w
    spread = np.sqrt(baselines.var(axis=0) + stdevs**2) * np.abs(w) / np.sqrt(samples)
    assert np.all(np.abs(np.asarray(maps) - expected) <= 5 * spread + 1e-6)
    # And far from the map with any single baseline.
    assert np.abs(np.asarray(maps) - (images - baselines[0]) * w).max() > 20 * spread.max()


@pytest.mark.slow
def test_one_baseline_is_unbiased_for_the_logit_difference():
    """With one baseline the sum of each sample is (x - b) . grad f at a uniform path point:
    its mean converges to f(x) - f(b) (completeness in expectation)."""
    model = TinyReluNet()
    variables = random_variables(model, SHAPE, seed=2)
    images = np.random.default_rng(3).uniform(size=(3, *SHAPE)).astype(np.float32)
    targets = np.array([0, 1, 3])
    small, large = (attribution.explain(
        "gradient_shap", model, variables, images, targets, key=jax.random.key(4),
        baselines=0.0, num_samples=n) for n in (16, 8192))
    logits = np.asarray(model.apply(variables, images))[np.arange(3), targets]
    zero = np.asarray(model.apply(variables, 0 * images))[np.arange(3), targets]
    gap = np.abs(np.asarray(large).sum(axis=(1, 2, 3)) - (logits - zero))
    assert np.all(gap <= 0.02 * np.abs(logits - zero).max())
    # The estimate really averages: 16 samples stray further than 8,192.
    assert np.abs(np.asarray(small).sum(axis=(1, 2, 3)) - (logits - zero)).max() > gap.max()


def test_bad_options_name_the_valid_values():
    apply_fn, variables = linear_model(SHAPE, 3)
    with pytest.raises(ValueError, match="stdevs must be a number >= 0; got -1"):
        attribution.build("gradient_shap", apply_fn, variables, SHAPE, stdevs=-1)
    with pytest.raises(ValueError, match=r"baselines must be images \[B, 4, 4, 1\]"):
        attribution.build("gradient_shap", apply_fn, variables, SHAPE,
                          baselines=np.zeros((2, 3, 3, 1)))
