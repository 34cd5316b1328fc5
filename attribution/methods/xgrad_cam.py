"""XGrad-CAM.

Fu, Hu, Dong, Jiang, Huang & Li, "Axiom-based Grad-CAM: Towards Accurate Visualization and
Explanation of CNNs", BMVC 2020.

Channel weights chosen to satisfy the sensitivity and conservation axioms: with A the layer's
output [h, w, K] and g = dy/dA, w_k = sum_ij A_k(i, j) g_k(i, j) / sum_ij A_k(i, j), and the map
is ReLU(sum_k w_k A_k). As in pytorch-grad-cam, 1e-7 is added to the denominator.

Options:
  layer: a layer with an [h, w, C] output, by name; None picks the last one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method
from attribution.methods._layer_map import layer_map_method, weighted_sum

EPSILON = 1e-7


def combine(activation: jax.Array, grads: jax.Array) -> jax.Array:
    total = jnp.sum(activation, axis=(1, 2))
    weights = jnp.sum(activation * grads, axis=(1, 2)) / (total + EPSILON)
    return weighted_sum(activation, weights)


def make(classifier: Classifier, *, layer: str | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`."""
    return layer_map_method(classifier, layer, "xgrad_cam", combine)


METHOD = Method(name="xgrad_cam", make=make, signed=False, stochastic=False, completeness=False,
                family="cam")
