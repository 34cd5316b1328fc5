"""HiResCAM.

Draelos & Carin, "Use HiResCAM instead of Grad-CAM for faithful explanations of
convolutional neural networks", arXiv:2011.08891, 2020.

Grad-CAM averages the gradient over space before weighting the channels, so a map can
highlight positions the model did not use. HiResCAM multiplies element-wise instead: with A the
layer's output [h, w, K] and g = dy/dA, the map is ReLU(sum_k g_k(i, j) A_k(i, j)). When the
layer is followed only by global average pooling and a dense layer, g is constant over space
and HiResCAM equals Grad-CAM.

Options:
  layer: a layer with an [h, w, C] output, by name; None picks the last one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method
from attribution.methods._layer_map import layer_map_method


def combine(activation: jax.Array, grads: jax.Array) -> jax.Array:
    return jax.nn.relu(jnp.sum(activation * grads, axis=-1))


def make(classifier: Classifier, *, layer: str | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`."""
    return layer_map_method(classifier, layer, "hires_cam", combine)


METHOD = Method(name="hires_cam", make=make, signed=False, stochastic=False, completeness=False,
                family="cam")
