"""SIC / AIC (PAIR's performance information curves): the information estimate, the curve's
area as PAIR computes it, and the whole metric against PAIR's loop written out in numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import interpolate

import attribution
from attribution.method import example_keys
from attribution.metrics import _pic
from tests.attribution._models import linear_model
from tests.attribution.metrics._cases import linear_case, score
from tests.attribution.metrics.test_road_irof import _impute_by_hand


def _med_bits(image, low, high):
    """JPEG-LS's median edge detector residuals, order-0 entropy in bits, times the size."""
    q = np.round(np.clip((image - low) / (high - low), 0, 1) * 255)
    padded = np.pad(q, ((1, 0), (1, 0)))
    residuals = []
    for i in range(q.shape[0]):
        for j in range(q.shape[1]):
            a, b, c = padded[i + 1, j], padded[i, j + 1], padded[i, j]
            if c >= max(a, b):
                pred = min(a, b)
            elif c <= min(a, b):
                pred = max(a, b)
            else:
                pred = a + b - c
            residuals.append(q[i, j] - pred)
    _, counts = np.unique(residuals, return_counts=True)
    p = counts / counts.sum()
    return -(p * np.log2(p)).sum() * q.size


@pytest.mark.slow
def test_information_is_the_median_edge_detector_entropy():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(3, 6, 5, 1)).astype(np.float32)
    images[1] = np.round(images[1] * 3) / 3  # Few levels: fewer bits.
    low, high = images.min(axis=(1, 2, 3), keepdims=True), images.max(axis=(1, 2, 3),
                                                                      keepdims=True)
    got = np.asarray(_pic.information(jnp.asarray(images), jnp.asarray(low), jnp.asarray(high)))
    expected = [_med_bits(images[n, ..., 0], low[n].item(), high[n].item()) for n in range(3)]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert got[1] < got[0]


def test_curve_area_as_pair_interpolates_and_integrates():
    rng = np.random.default_rng(1)
    entropies = rng.uniform(size=(4, 6))
    preds = np.maximum.accumulate(rng.uniform(size=(4, 6)), axis=1)
    got = np.asarray(_pic.curve_area(jnp.asarray(entropies, jnp.float32),
                                     jnp.asarray(preds, jnp.float32)))
    for n in range(4):
        fn = interpolate.interp1d(np.r_[entropies[n], 0.0, 1.0], np.r_[preds[n], 0.0, 1.0])
        x = np.append(np.linspace(0.0, 1.0, 1000, endpoint=False), 1.0)
        y = np.append(fn(x[:-1]), 1.0)
        np.testing.assert_allclose(got[n], np.trapezoid(y, x), rtol=1e-5)


@pytest.mark.slow
def test_sic_follows_pairs_loop():
    """PAIR's compute_pic_metric step by step in numpy (our interpolation and information
    estimate in place of griddata and WebP), on a linear model: the same areas, NaN where the
    probe is skipped."""
    shape = (10, 10, 1)
    apply_fn, variables = linear_model(shape, 3, seed=7)
    classifier = attribution.as_classifier(apply_fn, variables, shape)
    images = np.zeros((6, *shape), np.float32)  # Digit-like: a bright block on black.
    for n in range(6):
        images[n, 2 + n % 3:6 + n % 3, 3:7 - n % 2] = 1.0
    logits = images.reshape(6, -1) @ np.asarray(variables["w"]) + np.asarray(variables["b"])
    targets = logits.argmax(1).astype(np.int32)
    maps = np.random.default_rng(8).normal(size=images.shape).astype(np.float32)
    thresholds = (0.1, 0.3, 0.6)
    got = score("sic", classifier, variables, images, targets, maps, thresholds=thresholds,
                min_pred=0.0)
    keys = example_keys(jax.random.fold_in(jax.random.key(0), 0), 6)
    random_kept = np.asarray(_pic.random_masks(keys, 10, 10))
    for n in range(6):
        x, t, sal = images[n, ..., 0], targets[n], maps[n, ..., 0].ravel()
        low, high = x.min(), x.max()

        def pred(image, t=t):
            z = image.reshape(1, -1) @ np.asarray(variables["w"], np.float64) + np.asarray(
                variables["b"], np.float64)
            p = np.exp(z - z.max())
            return (p / p.sum())[0, t]

        blurred = _impute_by_hand(x, ~random_kept[n])
        info0, info_b = _med_bits(x, low, high), _med_bits(blurred, low, high)
        p0, pb = pred(x), pred(blurred)
        if not (info_b < info0 and pb < p0):
            assert np.isnan(got[n])
            continue
        points, best = [], 0.0
        for threshold in thresholds:
            kept = (sal >= np.quantile(sal, 1 - threshold)).reshape(10, 10) | random_kept[n]
            image = _impute_by_hand(x, ~kept)
            e = np.clip((_med_bits(image, low, high) - info_b) / (info0 - info_b), 0, 1)
            best = max(best, np.clip((pred(image) - pb) / (p0 - pb), 0, 1))
            points.append((e, best))
        fn = interpolate.interp1d([*(e for e, _ in points), 0.0, 1.0],
                                  [*(p for _, p in points), 0.0, 1.0])
        xs = np.append(np.linspace(0.0, 1.0, 1000, endpoint=False), 1.0)
        np.testing.assert_allclose(got[n], np.trapezoid(np.append(fn(xs[:-1]), 1.0), xs),
                                   rtol=1e-4, atol=1e-5)
    assert np.isfinite(got).sum() >= 2  # The case is not all skipped.


@pytest.mark.parametrize("name, options, message", [
    ("sic", {"thresholds": ()}, "at least one"), ("aic", {"thresholds": (0.5, 1.5)}, r"in \(0"),
    ("sic", {"min_pred": 2}, "min_pred")])
def test_bad_options(name, options, message):
    from attribution import metrics

    with pytest.raises(ValueError, match=message):
        metrics.build(name, linear_case()[0], **options)
