"""Sparseness (Gini) and complexity (entropy) against hand computations."""

import numpy as np
import pytest

from tests.attribution.metrics._cases import linear_case, score


@pytest.fixture(scope="module")
def case():
    return linear_case(num_examples=3)


def _maps(*rows):
    return np.asarray(rows, np.float32).reshape(len(rows), 4, 4, 1)


def test_sparseness_is_the_gini_index(case):
    one_hot = np.zeros(16)
    one_hot[5] = -4.0  # The magnitude counts.
    ramp = np.arange(16.0)
    maps = _maps(np.ones(16), one_hot, ramp)
    got = score("sparseness", *case, maps)
    # Gini of 0, 1, ..., 15 by its definition: mean absolute difference / (2 mean).
    gini_ramp = np.abs(ramp[:, None] - ramp[None, :]).mean() / (2 * ramp.mean())
    np.testing.assert_allclose(got, [0.0, 15 / 16, gini_ramp], atol=1e-5)


def test_complexity_is_the_entropy_of_the_magnitudes(case):
    two = np.zeros(16)
    two[[0, 3]] = [1.0, -3.0]
    maps = _maps(np.ones(16), two, np.r_[np.ones(8), np.zeros(8)])
    got = score("complexity", *case, maps)
    p = np.array([0.25, 0.75])
    np.testing.assert_allclose(got, [np.log(16), -(p * np.log(p)).sum(), np.log(8)], rtol=1e-5)
