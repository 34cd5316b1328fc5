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

import jax
import jax.numpy as jnp

from attribution import layers
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method
from attribution.methods._layer_map import coarse_map_fn, layer_map_method, weighted_sum


def combine(activation: jax.Array, grads: jax.Array) -> jax.Array:
    """Channel weights: the gradient's spatial mean."""
    return weighted_sum(activation, jnp.mean(grads, axis=(1, 2)))


def coarse_map(classifier: Classifier, layer: str | None,
               method: str = "grad_cam") -> Callable[..., jax.Array]:
    """Grad-CAM at the layer's resolution.

    Returns:
      `fn(variables, images [N, H, W, C], targets [N]) -> maps [N, h, w]`.

    Raises:
      ValueError: for an unknown or non-spatial layer (lists the valid ones).
    """
    return coarse_map_fn(classifier, layers.resolve_layer(classifier, layer, method), combine)


def make(classifier: Classifier, *, layer: str | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`."""
    return layer_map_method(classifier, layer, "grad_cam", combine)


METHOD = Method(name="grad_cam", make=make, signed=False, stochastic=False, completeness=False,
                family="cam")
