"""The random-logit test, completeness and non-sensitivity by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from attribution.method import example_keys
from attribution.metrics import random_logit
from attribution.sanity.similarity import spearman_signed
from tests.attribution._models import weight_images
from tests.attribution.metrics._cases import (
    SHAPE,
    explain_gradient,
    gradient_x_input,
    linear_case,
    score,
)


@pytest.fixture(scope="module")
def case():
    return linear_case(num_examples=6, num_classes=4)


def test_other_classes_are_uniform_over_the_rest():
    targets = jnp.asarray(np.arange(4000) % 4, jnp.int32)
    others = np.asarray(random_logit.other_classes(example_keys(jax.random.key(1), 4000),
                                                   targets, 4))
    assert (others != np.asarray(targets)).all()
    counts = np.bincount(others[np.asarray(targets) == 2], minlength=4)
    assert counts[2] == 0 and counts[[0, 1, 3]].min() > 280  # 1,000 draws over 3 classes.


@pytest.mark.slow
def test_random_logit_compares_with_the_map_of_the_drawn_class(case):
    classifier, variables, images, targets = case
    w = weight_images(variables, SHAPE, targets)
    got = score("random_logit", *case, w, explain=explain_gradient, similarity="spearman_signed")
    others = random_logit.other_classes(
        example_keys(jax.random.fold_in(jax.random.key(0), 0), 6), jnp.asarray(targets), 4)
    expected = spearman_signed(jnp.asarray(w), jnp.asarray(weight_images(variables, SHAPE,
                                                                         others)))
    np.testing.assert_allclose(got, np.asarray(expected), rtol=1e-5)
    assert (np.abs(got) < 0.99).all()


def test_completeness_applies_to_the_methods_that_promise_it(case):
    classifier, variables, images, targets = case
    exact = gradient_x_input(variables, images, targets)  # On a linear model: w x sums to
    np.testing.assert_allclose(score("completeness", *case, exact), 0.0, atol=1e-5)  # f(x)-f(0)
    w = weight_images(variables, SHAPE, targets)
    change = (exact.reshape(6, -1)).sum(1)
    np.testing.assert_allclose(score("completeness", *case, w),
                               np.abs(w.reshape(6, -1).sum(1) - change) / np.abs(change),
                               rtol=1e-4)
    metric = attribution.metrics.get("completeness")
    assert metric.applies_to(attribution.get("integrated_gradients"))
    assert metric.applies_to(attribution.get("deeplift"))
    assert not metric.applies_to(attribution.get("gradient"))


def test_non_sensitivity_counts_disagreements(case):
    """Zero pixels change nothing when set to 0: gradient x input (0 there) has no violation,
    the gradient (nonzero there) one per zero pixel; zeroing weights adds insensitive pixels."""
    classifier, variables, images, targets = case
    images = images.copy()
    images[:, :2] = 0.0  # 8 of 16 pixels black.
    exact = gradient_x_input(variables, images, targets)
    np.testing.assert_allclose(score("non_sensitivity", classifier, variables, images, targets,
                                     exact, features_in_step=1), 0.0)
    w = weight_images(variables, SHAPE, targets)
    np.testing.assert_allclose(score("non_sensitivity", classifier, variables, images, targets,
                                     w, features_in_step=1), 0.5)
