"""LayerCAM.

Jiang, Zhang, Hou, Cheng & Wei, "LayerCAM: Exploring Hierarchical Class Activation Maps for
Localization", IEEE Transactions on Image Processing 30, 2021.

Each position keeps its own weight, the positive part of the gradient there: with A the
layer's output [h, w, K] and g = dy/dA, the map is ReLU(sum_k ReLU(g_k(i, j)) A_k(i, j)).
Meant to work on early layers too, where Grad-CAM's spatially averaged weights blur.

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
    return jax.nn.relu(jnp.sum(jax.nn.relu(grads) * activation, axis=-1))


def make(classifier: Classifier, *, layer: str | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`."""
    return layer_map_method(classifier, layer, "layer_cam", combine)


METHOD = Method(name="layer_cam", make=make, signed=False, stochastic=False, completeness=False,
                family="cam")
