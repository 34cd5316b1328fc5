"""Grad-CAM++.

Chattopadhay, Sarkar, Howlader & Balasubramanian, "Grad-CAM++: Generalized Gradient-Based
Visual Explanations for Deep Convolutional Networks", WACV 2018.

With A the layer's output [h, w, K] and g = dy/dA the target logit's gradient, each position
gets its own share of the channel weight, computed in closed form from powers of g (the
paper's exponential-score derivation):

    alpha_k(i, j) = g^2 / (2 g^2 + sum_ab A_k(a, b) g^3),   w_k = sum_ij alpha_k(i, j) ReLU(g),

and the map is ReLU(sum_k w_k A_k). With alpha = 1 / (h w) instead, the weights are
Grad-CAM's wherever the gradient is non-negative (the paper, Sec. 3.1). As in pytorch-grad-cam,
1e-7 is added to the denominator and alpha is 0 where g is 0.

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


def position_weights(activation: jax.Array, grads: jax.Array) -> jax.Array:
    """alpha `[N, h, w, K]` from activations and gradients `[N, h, w, K]`."""
    g2 = jnp.square(grads)
    total = jnp.sum(activation, axis=(1, 2), keepdims=True)
    alpha = g2 / (2 * g2 + total * g2 * grads + EPSILON)
    return jnp.where(grads != 0, alpha, 0.0)


def combine(activation: jax.Array, grads: jax.Array) -> jax.Array:
    alpha = position_weights(activation, grads)
    return weighted_sum(activation, jnp.sum(alpha * jax.nn.relu(grads), axis=(1, 2)))


def make(classifier: Classifier, *, layer: str | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`."""
    return layer_map_method(classifier, layer, "grad_cam_plus_plus", combine)


METHOD = Method(name="grad_cam_plus_plus", make=make, signed=False, stochastic=False,
                completeness=False, family="cam")
