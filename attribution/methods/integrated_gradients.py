"""Integrated gradients.

Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017.

The map is `(x - baseline) * mean_k grad f(baseline + a_k (x - baseline))`, a Riemann sum of the
path integral over `steps` points `a_k`. `f` is the target class logit. The default midpoint
rule `a_k = (k + 1/2) / steps` has a completeness gap `|sum(map) - (f(x) - f(baseline))|`
several times smaller than averaging `linspace(0, 1, steps)` (both ends included, the rule
of PAIR saliency's `IntegratedGradients`), which `rule="linspace"` selects for comparisons.

Options:
    steps: Number of points on the straight path from the baseline to the input.
    baseline: A scalar or an array broadcastable to one image `(H, W, C)`; 0.0 is black.
    rule: Path points: "midpoint" (`(k + 1/2) / steps`) or "linspace" (`k / (steps - 1)`).
    chunk_size: Model evaluations (path point x example pairs, i.e. images) per pass; bounds
        memory by `chunk_size` images whatever N and `steps`. None: 64 per CPU core (up to 8
        cores), 4,096 on accelerators.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from attribution._checks import image_like, positive_int
from attribution._chunked import chunk_size_option, evaluation_sum, target_logit_grad
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method

RULES = ("midpoint", "linspace")


def path_points(steps: int, rule: str) -> np.ndarray:
    """The `steps` path fractions `a_k` in [0, 1] of a rule, float32 `[steps]`."""
    if rule == "midpoint":
        return ((np.arange(steps) + 0.5) / steps).astype(np.float32)
    return np.linspace(0.0, 1.0, steps).astype(np.float32)


def make(classifier: Classifier, *, steps: int = 64, baseline: ArrayLike = 0.0,
         rule: str = "midpoint", chunk_size: int | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`.

    Raises:
        ValueError: If `steps` or `chunk_size` is not a positive int (or None for
            `chunk_size`), `rule` is unknown, or `baseline` does not broadcast to one image.
    """
    steps = positive_int(steps, "steps")
    chunk_size = chunk_size_option(chunk_size)
    if rule not in RULES:
        raise ValueError(f"Unknown rule {rule!r}; valid rules: {', '.join(RULES)}.")
    base = image_like(baseline, classifier.input_shape, "baseline")
    alphas = path_points(steps, rule)

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        del key
        start = jnp.asarray(base, images.dtype)
        delta = images - start
        table = jnp.asarray(alphas, images.dtype)

        def grads(points: jax.Array, examples: jax.Array) -> jax.Array:
            path = start + table[points][:, None, None, None] * delta[examples]
            return target_logit_grad(classifier, variables, path, targets[examples])

        total = evaluation_sum(grads, steps, images.shape[0], chunk_size)
        return delta * (total / steps)

    return attribute


METHOD = Method(name="integrated_gradients", make=make, signed=True, stochastic=False,
                completeness=True, family="gradient")
