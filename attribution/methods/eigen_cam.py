"""Eigen-CAM.

Muhammad & Yeasin, "Eigen-CAM: Class Activation Map using Principal Components", IJCNN 2020.

Class-agnostic: the map is the layer's activations projected on their first principal
component. With A the layer's output reshaped to [h w, K] and centred over positions,
A = U S V^T, the map is ReLU(A v_1) on the [h, w] grid (as pytorch-grad-cam computes it). The
sign of a singular vector is arbitrary; v_1 is oriented so that it points along the mean
activation (positive mean . v_1), so the same activations always give the same map.

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
    del grads  # Unused: jit drops the backward pass.
    n, h, w, k = activation.shape
    flat = activation.reshape(n, h * w, k)
    mean = jnp.mean(flat, axis=1, keepdims=True)
    centred = flat - mean
    _, _, vt = jnp.linalg.svd(centred, full_matrices=False)
    top = vt[:, 0, :]  # [N, K]
    sign = jnp.where(jnp.sum(top * mean[:, 0, :], axis=-1) < 0, -1.0, 1.0)
    projection = jnp.einsum("npk,nk->np", centred, top * sign[:, None],
                            precision=jax.lax.Precision.HIGHEST)
    return jax.nn.relu(projection.reshape(n, h, w))


def make(classifier: Classifier, *, layer: str | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`."""
    return layer_map_method(classifier, layer, "eigen_cam", combine)


METHOD = Method(name="eigen_cam", make=make, signed=False, stochastic=False, completeness=False,
                family="cam")
