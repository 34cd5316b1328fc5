"""Drift between firings: equal to scipy's Spearman by hand; settled detection."""

import jax
import numpy as np
import pytest
from scipy import stats

from attribution import sanity


def test_drift_equals_a_hand_computation():
    rng = np.random.default_rng(0)
    first, previous, current = (rng.normal(size=(3, 6, 5, 2)).astype(np.float32)
                                for _ in range(3))
    out = jax.jit(sanity.make_drift())({"g": first}, {"g": previous}, {"g": current})

    def spearman_abs(a, b):
        return np.mean([stats.spearmanr(np.abs(x.sum(-1)).ravel(), np.abs(y.sum(-1)).ravel())[0]
                        for x, y in zip(a, b, strict=True)])

    assert float(out["g"]["to_first"]) == pytest.approx(spearman_abs(first, current), abs=1e-6)
    assert float(out["g"]["to_previous"]) == pytest.approx(spearman_abs(previous, current),
                                                           abs=1e-6)
    same = jax.jit(sanity.make_drift("l1"))({"g": current}, {"g": current}, {"g": current})
    assert float(same["g"]["to_previous"]) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="valid"):
        sanity.make_drift("cosine")


@pytest.mark.slow
def test_each_method_gets_its_own_scores():
    # All methods share one batched similarity: each must still get its own maps' scores.
    rng = np.random.default_rng(1)
    names = ("g", "h", "k")
    first, previous, current = ({m: rng.normal(size=(4, 8, 8, 1)).astype(np.float32)
                                 for m in names} for _ in range(3))
    current["h"] = previous["h"]  # h stopped changing; k's maps are bfloat16.
    current["k"] = current["k"].astype(jax.numpy.bfloat16)
    for similarity in ("spearman_signed", "ssim"):
        out = jax.jit(sanity.make_drift(similarity))(first, previous, current)
        sim = sanity.get_similarity(similarity)
        for m in names:
            for key, ref in (("to_first", first), ("to_previous", previous)):
                expected = float(np.mean(sim(ref[m], current[m])))
                assert float(out[m][key]) == pytest.approx(expected, abs=1e-6), (m, key)
        assert float(out["h"]["to_previous"]) == pytest.approx(1.0, abs=1e-6)


def test_no_methods_and_mismatched_shapes():
    drift = sanity.make_drift()
    assert drift({}, {}, {}) == {}
    maps = {"g": np.zeros((4, 8, 8, 1), np.float32), "h": np.zeros((2, 8, 8, 1), np.float32)}
    with pytest.raises(ValueError, match=r"one shape; first\['h'\] is \(2, 8, 8, 1\)"):
        drift(maps, maps, maps)


def test_settled_step():
    steps = [1, 2, 4, 8, 16, 32]
    assert sanity.settled_step(steps, [0.2, 0.95, 0.5, 0.91, 0.93, 0.99]) == 8
    assert sanity.settled_step(steps, [0.95] * 6) == 1
    assert sanity.settled_step(steps, [0.95] * 5 + [0.3]) is None
    assert sanity.settled_step(steps, [0.95] * 5 + [float("nan")]) is None
    with pytest.raises(ValueError, match="same length"):
        sanity.settled_step(steps, [0.9])
