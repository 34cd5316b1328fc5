"""Guided backpropagation.

Springenberg, Dosovitskiy, Brox & Riedmiller, "Striving for Simplicity: The All
Convolutional Net", ICLR Workshop 2015.

The gradient of the target logit, except that at every ReLU it passes only where the
forward input was positive AND the incoming gradient is positive. The model is used
unmodified: its ReLUs (`nn.relu`, `jax.nn.relu`, `jnp.maximum(x, 0)`) are found in its
traced computation and given the guided backward pass (see `attribution.relu_backward`).

Options: none. Raises ValueError at construction for a model without ReLUs.
"""

from __future__ import annotations

from typing import Any

import jax

from attribution._chunked import split_batch
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method
from attribution.relu_backward import rule_gradient


def make(classifier: Classifier) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`."""
    gradient = rule_gradient(classifier, "guided")

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        del key
        return gradient(variables, images, targets)

    return split_batch(attribute)


METHOD = Method(name="guided_backprop", make=make, signed=True, stochastic=False,
                completeness=False, family="propagation")
