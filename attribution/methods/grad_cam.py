"""Grad-CAM.

Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra, "Grad-CAM: Visual Explanations from
Deep Networks via Gradient-based Localization", ICCV 2017.

With A the chosen layer's output [h, w, K] and y the target logit, each channel's weight is
alpha_k = mean over (h, w) of dy/dA_k, and the map is ReLU(sum_k alpha_k A_k), resized
bilinearly to the input's H, W and repeated over its channels.

A is the output of the chosen Flax module. A model that applies `nn.relu` as a function
has no activation module, so for such models A is the conv layer's pre-activation (as with
Captum's LayerGradCam pointed at a conv layer).

Options:
  layer: a layer name ("Conv_2", "Block_1/Conv_0") with an [h, w, C] output; None (the
    default) picks the last such layer, i.e. the last conv layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from attribution import layers
from attribution._chunked import split_batch
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method


def coarse_map(classifier: Classifier, layer: str | None,
               method: str = "grad_cam") -> Callable[..., jax.Array]:
    """Grad-CAM at the layer's resolution.

    Returns:
      `fn(variables, images [N, H, W, C], targets [N]) -> maps [N, h, w]`.

    Raises:
      ValueError: for an unknown or non-spatial layer (lists the valid ones).
    """
    name = layers.resolve_layer(classifier, layer, method)
    gradients = layers.layer_gradients(classifier, name)

    def cam(variables, images, targets):
        activation, grads = gradients(variables, images, targets)
        alpha = jnp.mean(grads, axis=(1, 2))  # [N, K]
        return jax.nn.relu(jnp.einsum("nhwk,nk->nhw", activation, alpha))

    return cam


def make(classifier: Classifier, *, layer: str | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`."""
    cam = coarse_map(classifier, layer)

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        del key
        maps = cam(variables, images, targets)
        return layers.upsample_to_input(maps, classifier.input_shape).astype(jnp.float32)

    return split_batch(attribute)


METHOD = Method(name="grad_cam", make=make, signed=False, stochastic=False, completeness=False)
