"""Max / average sensitivity and the local Lipschitz estimate, reproduced noise draw by draw."""

import jax
import numpy as np
import pytest

from attribution.method import example_keys
from attribution.metrics import _robustness
from tests.attribution._models import weight_images
from tests.attribution.metrics._cases import (
    SHAPE,
    explain_gradient,
    explain_gradient_x_input,
    gradient_x_input,
    linear_case,
    score,
)


@pytest.fixture(scope="module")
def case():
    return linear_case(num_examples=3)


def _noise(kind, scale, samples, n=3):
    keys = example_keys(jax.random.fold_in(jax.random.key(0), 0), n)
    draw = _robustness.uniform(scale) if kind == "uniform" else _robustness.gaussian(scale)
    return np.stack([np.stack([np.asarray(draw(jax.random.fold_in(k, s), SHAPE)) for k in keys])
                     for s in range(samples)])  # [S, N, H, W, C]


@pytest.mark.slow
def test_the_gradient_of_a_linear_model_is_perfectly_robust(case):
    classifier, variables, images, targets = case
    w = weight_images(variables, SHAPE, targets)
    for name in ("max_sensitivity", "avg_sensitivity", "local_lipschitz_estimate"):
        np.testing.assert_allclose(score(name, *case, w, explain=explain_gradient), 0.0,
                                   atol=1e-6)


def test_sensitivity_of_gradient_x_input_by_hand(case):
    """a(x + d) - a(x) = w d: the relative change is ||w d|| / ||w x|| for each draw."""
    classifier, variables, images, targets = case
    maps = gradient_x_input(variables, images, targets)
    w = weight_images(variables, SHAPE, targets)
    noise = _noise("uniform", 0.1, 6)
    ratios = (np.linalg.norm((w * noise).reshape(6, 3, -1), axis=2)
              / np.linalg.norm(maps.reshape(3, -1), axis=1))
    got_max = score("max_sensitivity", *case, maps, explain=explain_gradient_x_input,
                    num_samples=6)
    got_avg = score("avg_sensitivity", *case, maps, explain=explain_gradient_x_input,
                    num_samples=6)
    np.testing.assert_allclose(got_max, ratios.max(0), rtol=1e-4)
    np.testing.assert_allclose(got_avg, ratios.mean(0), rtol=1e-4)


def test_local_lipschitz_of_gradient_x_input_by_hand(case):
    classifier, variables, images, targets = case
    maps = gradient_x_input(variables, images, targets)
    w = weight_images(variables, SHAPE, targets)
    noise = _noise("gaussian", 0.1, 5)

    def by_max(a):
        return a / np.abs(a.reshape(len(a), -1)).max(1).reshape(-1, 1, 1, 1)

    ratios = np.stack([
        np.linalg.norm((by_max(w * (images + d)) - by_max(maps)).reshape(3, -1), axis=1)
        / np.linalg.norm(d.reshape(3, -1), axis=1) for d in noise])
    got = score("local_lipschitz_estimate", *case, maps, explain=explain_gradient_x_input,
                num_samples=5)
    np.testing.assert_allclose(got, ratios.max(0), rtol=1e-4)
