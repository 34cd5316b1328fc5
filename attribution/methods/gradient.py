"""Vanilla gradient saliency.

Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks: Visualising Image
Classification Models and Saliency Maps", ICLR Workshop 2014.

The map is the gradient of the target class logit with respect to the input pixels, kept
signed and per channel (the paper's absolute value and channel max are a display choice).

Options: none.
"""

from __future__ import annotations

from typing import Any

import jax

from attribution._chunked import split_batch, target_logit_grad
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method


def make(classifier: Classifier) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> d logit / d image`."""

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        del key
        return target_logit_grad(classifier, variables, images, targets)

    return split_batch(attribute)


METHOD = Method(name="gradient", make=make, signed=True, stochastic=False, completeness=False,
                family="gradient")
