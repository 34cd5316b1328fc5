"""Faithfulness metrics against hand computations on a linear classifier."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attribution.method import example_keys
from attribution.metrics import faithfulness_correlation as fc
from attribution.metrics import infidelity as infid
from attribution.metrics import pixel_flipping, region_perturbation
from tests.attribution._models import weight_images
from tests.attribution.metrics._cases import (
    SHAPE,
    gradient_x_input,
    linear_case,
    probabilities,
    score,
)


@pytest.fixture(scope="module")
def case():
    return linear_case(num_examples=4)


@pytest.mark.slow
def test_faithfulness_correlation_is_one_for_the_exact_contributions(case):
    """On a linear model with a black baseline the logit drop of a subset is the sum of w x
    over it: gradient x input correlates perfectly, its negative at -1."""
    classifier, variables, images, targets = case
    exact = gradient_x_input(variables, images, targets)
    options = dict(num_runs=20, subset_size=5)
    np.testing.assert_allclose(score("faithfulness_correlation", *case, exact, **options), 1.0,
                               atol=1e-5)
    np.testing.assert_allclose(score("faithfulness_correlation", *case, -exact, **options),
                               -1.0, atol=1e-5)
    # Subsets: `subset_size` distinct pixels each, different across runs.
    keys = example_keys(jax.random.key(0), 4)
    first, second = (np.asarray(fc.random_subsets(keys, r, 16, 5)) for r in (0, 1))
    assert (first.sum(1) == 5).all() and (first != second).any()


def _pixel_flipping_by_hand(variables, images, targets, maps, step):
    curves = []
    for x, t, a in zip(images, targets, maps, strict=True):
        order = np.argsort(-a.ravel(), kind="stable")
        x = x.copy().ravel()
        curve = []
        for start in range(0, 16, step):
            x[order[start:start + step]] = 0.0
            curve.append(probabilities(variables, x.reshape(1, *SHAPE), np.array([t]))[0])
        curves.append(curve)
    return np.asarray(curves)


def test_pixel_flipping_curve_and_area_by_hand(case):
    classifier, variables, images, targets = case
    maps = np.random.default_rng(3).normal(size=images.shape).astype(np.float32)
    expected = _pixel_flipping_by_hand(variables, images, targets, maps, 3)  # 6 steps, last 1
    curve = pixel_flipping.make_curve(classifier, features_in_step=3)
    got = np.asarray(jax.jit(curve)(variables, jnp.asarray(images), jnp.asarray(targets),
                                    jnp.asarray(maps)))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    areas = score("pixel_flipping", *case, maps, features_in_step=3)
    np.testing.assert_allclose(areas, np.trapezoid(expected, dx=1 / 5, axis=1), rtol=1e-5)


def test_monotonicity_by_hand(case):
    classifier, variables, images, targets = case
    maps = np.random.default_rng(4).normal(size=images.shape).astype(np.float32)
    expected = []
    for x, t, a in zip(images, targets, maps, strict=True):
        order = np.argsort(np.abs(a.ravel()), kind="stable")
        restored = np.zeros(16, np.float32)
        curve = []
        for start in range(0, 16, 4):
            restored[order[start:start + 4]] = x.ravel()[order[start:start + 4]]
            curve.append(probabilities(variables, restored.reshape(1, *SHAPE), np.array([t]))[0])
        expected.append(np.mean(np.diff(curve) >= 0))
    got = score("monotonicity", *case, maps, features_in_step=4)
    np.testing.assert_allclose(got, expected)
    assert 0 < np.mean(got) < 1  # The case is not trivial.


def test_region_perturbation_by_hand(case):
    classifier, variables, images, targets = case
    maps = np.random.default_rng(5).normal(size=images.shape).astype(np.float32)
    region = (np.arange(4)[:, None] // 2) * 2 + np.arange(4)[None, :] // 2  # 2 x 2 patches
    curves = jax.jit(region_perturbation.make_curves(classifier, patch_size=2))(
        variables, jnp.asarray(images), jnp.asarray(targets), jnp.asarray(maps))
    for n, (x, t, a) in enumerate(zip(images, targets, maps, strict=True)):
        sums = np.array([a[..., 0][region == r].sum() for r in range(4)])
        before = probabilities(variables, x[None], np.array([t]))[0]
        for name, order in (("morf", np.argsort(-sums, kind="stable")),
                            ("lerf", np.argsort(sums, kind="stable"))):
            removed = x[..., 0].copy()
            expected = []
            for r in order:
                removed[region == r] = 0.0
                expected.append(before - probabilities(variables, removed[None, ..., None],
                                                       np.array([t]))[0])
            np.testing.assert_allclose(np.asarray(curves[name][n]), expected, rtol=1e-5,
                                       atol=1e-7)
    got = score("region_perturbation", *case, maps, patch_size=2)
    np.testing.assert_allclose(got, np.asarray(curves["morf"]).mean(1)
                               - np.asarray(curves["lerf"]).mean(1), rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_infidelity_vanishes_for_the_gradient_of_a_linear_model(case):
    """f(x) - f(x - I) = w . I exactly: the gradient w has infidelity 0; 2w has the squared
    error of w . I unless normalized, which rescales it back to 0."""
    classifier, variables, images, targets = case
    w = weight_images(variables, SHAPE, targets)
    np.testing.assert_allclose(score("infidelity", *case, w, normalize=False), 0.0, atol=1e-9)
    np.testing.assert_allclose(score("infidelity", *case, 2 * w, normalize=True), 0.0, atol=1e-9)
    doubled = score("infidelity", *case, 2 * w, normalize=False, num_samples=5)
    keys = example_keys(jax.random.fold_in(jax.random.key(0), 0), 4)
    noise = np.stack([np.asarray(infid.perturbations(keys, s, SHAPE, 0.1)) for s in range(5)])
    by_hand = np.mean(np.sum(noise * w, axis=(2, 3, 4)) ** 2, axis=0)
    np.testing.assert_allclose(doubled, by_hand, rtol=1e-4)
