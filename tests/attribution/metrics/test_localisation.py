"""Relevance mass and rank accuracy and the pointing game, with the strokes as the mask."""

import numpy as np
import pytest

from tests.attribution.metrics._cases import linear_case, score

# One 4 x 4 image: strokes (value 1) on the first row; a faint pixel (0.4) stays background.
IMAGE = np.zeros((1, 4, 4, 1), np.float32)
IMAGE[0, 0, :, 0] = 1.0
IMAGE[0, 2, 2, 0] = 0.4


@pytest.fixture(scope="module")
def case():
    classifier, variables, _, _ = linear_case()
    return classifier, variables, IMAGE, np.array([1], np.int32)


def _map(values):
    return np.asarray(values, np.float32).reshape(1, 4, 4, 1)


MAP = _map([3, 0, 0, 1,
            0, 0, 2, 0,
            0, 0, -2, 0,
            0, 0, 0, 0])


def test_relevance_mass_accuracy_by_hand(case):
    np.testing.assert_allclose(score("relevance_mass_accuracy", *case, MAP), [4 / 6], rtol=1e-6)
    # Signed, as Quantus: (3 + 1) / (3 + 1 + 2 - 2).
    np.testing.assert_allclose(score("relevance_mass_accuracy", *case, MAP, positive=False),
                               [1.0], rtol=1e-6)
    # The faint pixel joins the strokes below a threshold of 0.4.
    np.testing.assert_allclose(score("relevance_mass_accuracy", *case, MAP, threshold=0.3),
                               [4 / 6], rtol=1e-6)


def test_relevance_rank_accuracy_by_hand(case):
    # K = 4 stroke pixels; the 4 most relevant are 3, 2, 1 and the first of the zeros in pixel
    # order (pixel 1, on the strokes): 3 of 4 on the strokes.
    np.testing.assert_allclose(score("relevance_rank_accuracy", *case, MAP), [0.75])


def test_pointing_game_by_hand(case):
    assert score("pointing_game", *case, MAP).tolist() == [1.0]
    off = _map([0, 0, 0, 0,
                0, 0, 0, 0,
                0, 0, 0, 5,
                0, 0, 0, 0])
    assert score("pointing_game", *case, off).tolist() == [0.0]
    near = _map([0, 0, 0, 0,
                 0, 0, 0, 5,
                 0, 0, 0, 0,
                 0, 0, 0, 0])
    assert score("pointing_game", *case, near).tolist() == [0.0]
    assert score("pointing_game", *case, near, tolerance=1).tolist() == [1.0]
