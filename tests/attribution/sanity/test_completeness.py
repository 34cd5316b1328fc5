"""Integrated gradients' completeness gap: by hand, exact on a linear model, small when trained."""

import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from attribution import sanity
from tests.attribution._models import linear_model


def test_gap_by_hand():
    maps = jnp.stack([jnp.full((2, 2, 1), 0.75), jnp.zeros((2, 2, 1))])  # sums 3 and 0
    gap = sanity.completeness_gap(maps, jnp.array([5.0, 2.0]), jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(gap, [0.25, 0.0])  # |3 - 4| / 4; 0 / floor
    with pytest.raises(ValueError, match=r"logits \[N\]"):
        sanity.completeness_gap(maps, jnp.zeros(3), jnp.zeros(3))


def test_gap_vanishes_on_a_linear_model():
    apply_fn, variables = linear_model((5, 5, 1), num_classes=4)
    images = jnp.asarray(np.random.default_rng(0).uniform(size=(3, 5, 5, 1)), jnp.float32)
    targets = jnp.array([0, 3, 1], jnp.int32)
    maps = attribution.explain("integrated_gradients", apply_fn, variables, images, targets,
                               steps=4, baseline=0.5)
    gap = sanity.make_completeness_gap(apply_fn, variables, (5, 5, 1), baseline=0.5)
    assert np.all(gap(variables, images, targets, maps) < 1e-5)


@pytest.mark.slow
def test_gap_shrinks_with_steps_on_a_trained_cnn(trained_cnn, digits):
    model, variables = trained_cnn
    images, labels = jnp.asarray(digits[0][::8]), jnp.asarray(digits[1][::8])
    gap = sanity.make_completeness_gap(model, variables, (28, 28, 1))
    gaps = {}
    for steps in (4, 64):
        maps = attribution.explain("integrated_gradients", model, variables, images, labels,
                                   steps=steps)
        gaps[steps] = float(np.mean(gap(variables, images, labels, maps)))
    print(f"\nIG completeness gap, 8 digits: 4 steps {gaps[4]:.4f}, 64 steps {gaps[64]:.4f}")
    assert gaps[64] < 0.005 and gaps[64] < gaps[4] / 4
