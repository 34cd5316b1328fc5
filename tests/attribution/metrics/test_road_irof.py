"""ROAD's noisy linear imputation against a sparse direct solve, ROAD and IROF by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.sparse import lil_matrix
from scipy.sparse.linalg import spsolve

from attribution import metrics, segmentation
from attribution.metrics import _imputation
from tests.attribution.metrics._cases import linear_case, probabilities, score

OFFSETS = {(1, 1): 1 / 12, (0, 1): 1 / 6, (-1, 1): 1 / 12, (1, -1): 1 / 12, (0, -1): 1 / 6,
           (-1, -1): 1 / 12, (1, 0): 1 / 6, (-1, 0): 1 / 6}


def _impute_by_hand(image, removed):
    """The reference's system, written out: s_u x_u - sum_j w_uj x_j = 0 for removed u."""
    h, w = image.shape
    unknown = [(i, j) for i in range(h) for j in range(w) if removed[i, j]]
    index = {p: k for k, p in enumerate(unknown)}
    a = lil_matrix((len(unknown), len(unknown)))
    b = np.zeros(len(unknown))
    for k, (i, j) in enumerate(unknown):
        for (di, dj), weight in OFFSETS.items():
            q = (i + di, j + dj)
            if not (0 <= q[0] < h and 0 <= q[1] < w):
                continue
            a[k, k] += weight
            if q in index:
                a[k, index[q]] -= weight
            else:
                b[k] += weight * image[q]
    out = image.astype(np.float64).copy()
    for (i, j), v in zip(unknown, spsolve(a.tocsc(), b), strict=True):
        out[i, j] = v
    return out


@pytest.mark.slow
def test_imputation_solves_the_references_system():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(3, 9, 7)).astype(np.float32)
    removed = rng.uniform(size=(3, 9, 7)) < np.array([0.2, 0.6, 0.95])[:, None, None]
    removed[:, 0, 0] = False  # Every image keeps a pixel.
    got = np.asarray(_imputation.impute(jnp.asarray(images), jnp.asarray(removed)))
    for n in range(3):
        np.testing.assert_allclose(got[n], _impute_by_hand(images[n], removed[n]), atol=2e-5)
    # The noise lands on the imputed pixels only, with the given scale.
    keys = jax.vmap(lambda k: jax.random.fold_in(jax.random.key(0), k))(jnp.arange(3))
    noisy = np.asarray(_imputation.impute_with_noise(
        jnp.asarray(images)[..., None], jnp.asarray(removed), keys, 0.5))[..., 0]
    np.testing.assert_array_equal(noisy[~removed], images[~removed])
    assert 0.4 < np.std(noisy[removed] - got[removed]) < 0.6


@pytest.mark.slow
def test_road_by_hand():
    classifier, variables, images, targets = linear_case(num_examples=4, seed=3)
    maps = np.random.default_rng(4).normal(size=images.shape).astype(np.float32)
    percentages = (25, 50, 75)
    got = score("road", classifier, variables, images, targets, maps, percentages=percentages,
                noise=0.0)
    expected = []
    for x, t, a in zip(images, targets, maps, strict=True):
        order = np.argsort(-a.ravel(), kind="stable")
        hits = []
        for p in percentages:
            removed = np.zeros(16, bool)
            removed[order[:int(16 * p / 100)]] = True
            filled = _impute_by_hand(x[..., 0], removed.reshape(4, 4))
            logits = filled.reshape(1, -1) @ np.asarray(variables["w"], np.float64) + \
                np.asarray(variables["b"], np.float64)
            hits.append(float(np.argmax(logits) == t))
        expected.append(np.mean(hits))
    np.testing.assert_allclose(got, expected)


@pytest.mark.slow
def test_irof_by_hand():
    classifier, variables, images, targets = linear_case(num_examples=3, seed=5)
    maps = np.random.default_rng(6).normal(size=images.shape).astype(np.float32)
    got = score("irof", classifier, variables, images, targets, maps, segment_size=2)
    labels = np.asarray(segmentation.slic(jnp.asarray(images), size=2, compactness=0.3))
    expected = []
    for x, t, a, lab in zip(images, targets, maps, labels, strict=True):
        present = np.unique(lab)
        means = np.array([a[..., 0][lab == s].mean() for s in present])
        before = probabilities(variables, x[None], np.array([t]))[0]
        removed = x.copy()
        ratios = []
        for s in present[np.argsort(-means, kind="stable")]:
            removed[lab == s] = x.mean()
            ratios.append(probabilities(variables, removed[None], np.array([t]))[0] / before)
        ratios = np.asarray(ratios)
        area = ratios.sum() - (ratios[0] + ratios[-1]) / 2
        expected.append((len(present) - area) / len(present))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("options, message", [({"percentages": ()}, "at least one"),
                                              ({"percentages": (50, 120)}, "percentages"),
                                              ({"noise": -1}, "noise")])
def test_road_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        metrics.build("road", linear_case()[0], **options)
