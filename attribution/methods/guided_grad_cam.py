"""Guided Grad-CAM.

Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra, "Grad-CAM: Visual Explanations from
Deep Networks via Gradient-based Localization", ICCV 2017.

The pixel-level guided backpropagation map times the Grad-CAM map upsampled to the input
(bilinearly, repeated over channels): fine detail from the first, class localisation from
the second.

Options:
  layer: Grad-CAM's layer, as in `grad_cam`; None (default) picks the last conv layer.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from attribution import layers
from attribution._chunked import split_batch
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method
from attribution.methods.grad_cam import coarse_map
from attribution.relu_backward import rule_gradient


def make(classifier: Classifier, *, layer: str | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`."""
    cam = coarse_map(classifier, layer, method="guided_grad_cam")
    guided = rule_gradient(classifier, "guided")

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        del key
        coarse = layers.upsample_to_input(cam(variables, images, targets), classifier.input_shape)
        return (guided(variables, images, targets) * coarse).astype(jnp.float32)

    return split_batch(attribute)


METHOD = Method(name="guided_grad_cam", make=make, signed=True, stochastic=False,
                completeness=False, family="cam")
