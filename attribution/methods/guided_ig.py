"""Guided integrated gradients.

Kapishnikov, Venugopalan, Avci, Wedin, Terry & Bolukbasi, "Guided Integrated Gradients: an
Adaptive Path Method for Removing Noise", CVPR 2021.

Integrated gradients along a path chosen as it goes: at each of `steps` steps the features
with the smallest absolute gradient (a `fraction` of them) move towards the input first,
until the path's L1 distance to the input has shrunk by 1 / steps of the total; no feature
strays more than `max_dist` (in path fraction) from the straight line. The map accumulates
`(x_new - x_old) * gradient(x_old)` over every move. This is PAIR saliency's algorithm
(`GuidedIG`, its defaults 200 steps, fraction 0.25, max_dist 0.02) in float32 (the L1 target
counts as met within 1e-6 relative, PAIR's float64 uses 1e-9; a step also ends when every
feature has reached its limit), with every example's inner loop (`lax.while_loop`) run side
by side; the steps are sequential, one gradient of the N probes each (cut into passes and
lanes as the gradient method's, its convolutions in XLA:CPU's fast layouts:
`attribution/_conv_layout.py`). With `max_dist=0` it is integrated gradients on the straight
line with `steps` left Riemann points.

Options:
    steps: Path steps (sequential gradient passes).
    fraction: Share of the features [0, 1] moved at each inner iteration.
    max_dist: How far (in path fraction) a feature may run ahead of the straight line.
    baseline: A scalar or an array broadcastable to one image `(H, W, C)`; 0.0 is black.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from numpy.typing import ArrayLike

from attribution._checks import image_like, positive_int
from attribution._chunked import split_batch, target_logit_grad
from attribution._conv_layout import canonical_convs
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method

# Closeness to the L1 target, relative and absolute: PAIR's 1e-9 is below float32's rounding.
RELATIVE_TOLERANCE, ABSOLUTE_TOLERANCE = 1e-6, 1e-9


def _fraction(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1]; got {value!r}.")
    return float(value)


def _kth_smallest(values: jax.Array, k: int) -> jax.Array:
    """The k-th smallest (from 0) of the non-negative floats `values` [D], exactly.

    Bisection over the values' bit patterns (ordered as the values are, for non-negative
    floats, infinity included): one counting pass per bit. On 2 CPU cores, 0.23 against 3.2 ms
    for a sort of 32 x 784 values, 2.9 against 25 ms for 256 x 784.
    """
    int_type = {2: jnp.int16, 4: jnp.int32, 8: jnp.int64}[values.dtype.itemsize]
    bits = jax.lax.bitcast_convert_type(values, int_type)

    def halve(_, bounds):
        low, high = bounds
        middle = low + (high - low) // 2
        enough = jnp.sum(bits <= middle) > k
        return jnp.where(enough, low, middle + 1), jnp.where(enough, middle, high)

    infinity = jax.lax.bitcast_convert_type(jnp.asarray(jnp.inf, values.dtype), int_type)
    low, _ = jax.lax.fori_loop(0, 8 * values.dtype.itemsize - 1, halve,
                               (jnp.zeros((), int_type), infinity))
    return jax.lax.bitcast_convert_type(low, values.dtype)


def _moves(x, attr, grad_actual, x_input, x_baseline, alpha_min, alpha_max, l1_target,
           fraction):
    """One step's inner loop for one example (flat vectors `[D]`)."""
    total = x_input - x_baseline
    x_min = x_baseline + total * alpha_min
    x_max = x_baseline + total * alpha_max
    size = x.shape[0]
    rank = int(fraction * (size - 1))  # np.quantile(..., method="lower")

    def body(state):
        x, attr, grad, _, _ = state
        x_old = x
        x_alpha = jnp.where(total != 0, (x - x_baseline) / jnp.where(total != 0, total, 1.0),
                            alpha_max)
        x = jnp.where(x_alpha < alpha_min, x_min, x)
        l1_current = jnp.sum(jnp.abs(x - x_input))
        close = jnp.abs(l1_target - l1_current) <= jnp.maximum(
            RELATIVE_TOLERANCE * jnp.maximum(jnp.abs(l1_target), jnp.abs(l1_current)),
            ABSOLUTE_TOLERANCE)
        grad = jnp.where(x == x_max, jnp.inf, grad)
        magnitude = jnp.abs(grad)
        # A GPU sorts in one kernel, where the bisection would be a kernel per bit.
        threshold = jax.lax.platform_dependent(
            magnitude, cpu=lambda a: _kth_smallest(a, rank),
            default=lambda a: jnp.sort(a)[rank])
        selected = (magnitude <= threshold) & (grad != jnp.inf) & ~close
        l1_selected = jnp.sum(jnp.abs(x - x_max) * selected)
        gamma = jnp.where(l1_selected > 0,
                          (l1_current - l1_target) / jnp.where(l1_selected > 0, l1_selected, 1.0),
                          jnp.inf)
        moved = jnp.where(gamma > 1.0, x_max, x + (x_max - x) * gamma)
        x = jnp.where(selected, moved, x)
        attr = attr + (x - x_old) * grad_actual
        # Every feature at its step's limit: nothing more can move (stops, where float64
        # arithmetic would have met the target exactly).
        stuck = l1_selected == 0
        return x, attr, grad, jnp.where(close | stuck, 0.0, gamma), close | stuck

    def cond(state):
        return (state[3] > 1.0) & ~state[4]

    start = (x, attr, grad_actual, jnp.asarray(jnp.inf, x.dtype), jnp.asarray(False))
    x, attr, _, _, _ = jax.lax.while_loop(cond, body, start)
    return x, attr


def make(classifier: Classifier, *, steps: int = 200, fraction: float = 0.25,
         max_dist: float = 0.02, baseline: ArrayLike = 0.0) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: For a non-positive `steps`, a `fraction` or `max_dist` outside [0, 1], or a
            `baseline` that does not broadcast to one image.
    """
    steps = positive_int(steps, "steps")
    fraction = _fraction(fraction, "fraction")
    max_dist = _fraction(max_dist, "max_dist")
    base = image_like(baseline, classifier.input_shape, "baseline")
    # Each step's gradient is cut into passes and lanes as the gradient method's is.
    gradient = split_batch(lambda variables, images, targets, key: target_logit_grad(
        classifier, variables, images, targets))

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        n = images.shape[0]
        x_input = images.reshape(n, -1)
        x_baseline = jnp.broadcast_to(jnp.asarray(base, images.dtype).reshape(-1), x_input.shape)
        l1_total = jnp.sum(jnp.abs(x_input - x_baseline), axis=1)

        def step(carry, index):
            x, attr = carry
            grad = gradient(variables, x.reshape(images.shape), targets, key).reshape(n, -1)
            alpha = (index + 1.0) / steps
            alpha_min = jnp.maximum(alpha - max_dist, 0.0)
            alpha_max = jnp.minimum(alpha + max_dist, 1.0)
            l1_target = l1_total * (1 - (index + 1.0) / steps)
            x, attr = jax.vmap(_moves, in_axes=(0, 0, 0, 0, 0, None, None, 0, None))(
                x, attr, grad, x_input, x_baseline, alpha_min, alpha_max, l1_target, fraction)
            return (x, attr), None

        start = (x_baseline, jnp.zeros_like(x_input))
        # In a loop body XLA:CPU leaves the gradient's convolutions in a slow layout
        # (`_conv_layout`): 2-3x slower steps.
        (_, attr), _ = jax.lax.scan(canonical_convs(step), start,
                                    jnp.arange(steps, dtype=images.dtype))
        return attr.reshape(images.shape).astype(jnp.float32)

    return attribute


METHOD = Method(name="guided_ig", make=make, signed=True, stochastic=False, completeness=False,
                family="gradient")
