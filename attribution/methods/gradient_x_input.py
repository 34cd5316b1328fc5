"""Gradient times input.

Shrikumar, Greenside, Shcherbina & Kundaje, "Not Just a Black Box: Learning Important
Features Through Propagating Activation Differences", arXiv:1605.01713, 2016.

The map is the input times the gradient of the target class logit with respect to it,
elementwise. For a linear model it is each pixel's exact contribution to the logit.

Options: none.
"""

from __future__ import annotations

from typing import Any

import jax

from attribution._chunked import split_batch, target_logit_grad
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method


def make(classifier: Classifier) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> images * gradient`."""

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        del key
        return images * target_logit_grad(classifier, variables, images, targets)

    return split_batch(attribute)


METHOD = Method(name="gradient_x_input", make=make, signed=True, stochastic=False,
                completeness=False, family="gradient")
