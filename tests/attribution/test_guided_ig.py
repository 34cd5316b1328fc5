"""Guided IG against PAIR saliency's algorithm written out in float64 numpy, and its limit."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import attribution
from tests.attribution._models import random_variables
from trainer.models import CNN

SHAPE = (10, 10, 1)


def _guided_ig_reference(x_input, grad_func, steps, fraction, max_dist):
    """PAIR saliency's guided_ig_impl (black baseline), transcribed."""
    x_input = x_input.astype(np.float64)
    baseline = np.zeros_like(x_input)
    x, attr = baseline.copy(), np.zeros_like(x_input)
    total = x_input - baseline
    l1_total = np.abs(total).sum()
    for step in range(steps):
        grad_actual = grad_func(x)
        grad = grad_actual.copy()
        alpha = (step + 1.0) / steps
        alpha_min, alpha_max = max(alpha - max_dist, 0.0), min(alpha + max_dist, 1.0)
        x_min, x_max = baseline + total * alpha_min, baseline + total * alpha_max
        l1_target = l1_total * (1 - (step + 1) / steps)
        gamma = np.inf
        while gamma > 1.0:
            x_old = x.copy()
            with np.errstate(divide="ignore", invalid="ignore"):
                x_alpha = np.where(total != 0, (x - baseline) / total, alpha_max)
            x[x_alpha < alpha_min] = x_min[x_alpha < alpha_min]
            l1_current = np.abs(x - x_input).sum()
            if math.isclose(l1_target, l1_current, rel_tol=1e-9, abs_tol=1e-9):
                attr += (x - x_old) * grad_actual
                break
            grad[x == x_max] = np.inf
            threshold = np.quantile(np.abs(grad), fraction, method="lower")
            s = (np.abs(grad) <= threshold) & (grad != np.inf)
            l1_s = (np.abs(x - x_max) * s).sum()
            gamma = (l1_current - l1_target) / l1_s if l1_s > 0 else np.inf
            x[s] = x_max[s] if gamma > 1.0 else (x + (x_max - x) * gamma)[s]
            attr += (x - x_old) * grad_actual
    return attr


@pytest.fixture(scope="module")
def cnn():
    model = CNN(features=(4, 8), dense=16)
    variables = random_variables(model, SHAPE, seed=0)
    images = np.random.default_rng(1).uniform(size=(3, *SHAPE)).astype(np.float32)
    return model, variables, images, np.array([1, 2, 3])


@pytest.mark.slow
@pytest.mark.parametrize("fraction, max_dist", [(0.25, 0.02), (0.1, 0.3)])
def test_matches_pair_saliencys_algorithm(cnn, fraction, max_dist):
    model, variables, images, targets = cnn
    grad = jax.jit(jax.grad(lambda x, t: model.apply(variables, x[None])[0, t]))
    expected = np.stack([_guided_ig_reference(
        x, lambda z, t=t: np.asarray(grad(jnp.asarray(z, jnp.float32), t), np.float64),
        steps=40, fraction=fraction, max_dist=max_dist) for x, t in zip(images, targets,
                                                                         strict=True)])
    maps = attribution.explain("guided_ig", model, variables, images, targets, steps=40,
                               fraction=fraction, max_dist=max_dist)
    np.testing.assert_allclose(maps, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())


@pytest.mark.slow
def test_no_deviation_is_integrated_gradients_with_left_points(cnn):
    model, variables, images, targets = cnn
    steps = 16
    maps = attribution.explain("guided_ig", model, variables, images, targets, steps=steps,
                               max_dist=0.0)
    grads = sum(np.asarray(attribution.explain("gradient", model, variables,
                                               images * k / steps, targets))
                for k in range(steps))
    np.testing.assert_allclose(maps, images * grads / steps, rtol=1e-4, atol=1e-6)


def test_bad_options_name_the_bad_value(cnn):
    model, variables, _, _ = cnn
    with pytest.raises(ValueError, match=r"fraction must be a number in \[0, 1\]; got 1.5"):
        attribution.build("guided_ig", model, variables, SHAPE, fraction=1.5)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_kth_smallest_is_the_sorted_value_with_ties_zeros_and_infinities(dtype):
    from attribution.methods.guided_ig import _kth_smallest
    rng = np.random.default_rng(3)
    values = np.abs(rng.standard_normal(300)).astype(dtype)
    values[:40], values[40:80], values[80:90] = 0.0, values[200], np.inf
    select = jax.jit(_kth_smallest, static_argnums=1)
    for k in (0, 39, 40, 75, 150, 289, 290, 299):
        assert select(jnp.asarray(values), k) == np.sort(values)[k], k
