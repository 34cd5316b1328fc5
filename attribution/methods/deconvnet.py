"""DeconvNet saliency.

Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014.

The target logit is propagated back to the input as the gradient, except that at every
ReLU the incoming signal is rectified and the forward pass's mask is ignored. As later
formulated (e.g. Springenberg et al. 2015), this is the "deconvnet" backward rule; the
model is used unmodified (see `attribution.relu_backward`). Pooling layers here are
differentiated as usual (the paper's max-unpooling "switches" are exactly max-pool's
gradient routing).

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
    gradient = rule_gradient(classifier, "deconvnet")

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        del key
        return gradient(variables, images, targets)

    return split_batch(attribute)


METHOD = Method(name="deconvnet", make=make, signed=True, stochastic=False, completeness=False,
                family="propagation")
