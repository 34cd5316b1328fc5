"""Ablation-CAM.

Desai & Ramaswamy, "Ablation-CAM: Visual Explanations for Deep Convolutional Network via
Gradient-free Localization", WACV 2020.

Gradient-free: each channel k of the layer's output A [h, w, K] is set to zero in turn and the
target logit y recomputed (y_k); the channel's weight is its relative drop
w_k = (y - y_k) / y, and the map is ReLU(sum_k w_k A_k). (pytorch-grad-cam sets a channel to
min(A) - 1e7 when the activations can be negative, so that a following ReLU zeroes it: the
same logits whenever a ReLU follows, as in this project's models.) Costs K forward passes per
image, run `chunk_size` at a time.

Options:
  layer: a layer with an [h, w, C] output, by name; None picks the last one.
  chunk_size: ablated forward passes per batch; None: 64 per CPU core (up to 8), 4,096 on
    accelerators.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from attribution import layers
from attribution._chunked import chunk_size_option, evaluation_sum
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method
from attribution.methods._layer_map import weighted_sum


def make(classifier: Classifier, *, layer: str | None = None,
         chunk_size: int | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`."""
    name = layers.resolve_layer(classifier, layer, "ablation_cam")
    chunk_size = chunk_size_option(chunk_size)
    shape = layers.layer_output_shapes(classifier)[name]
    channels = shape[-1]
    apply = layers.perturbed_apply(classifier, name)

    def target(logits: jax.Array, targets: jax.Array) -> jax.Array:
        return jnp.take_along_axis(logits, targets[:, None], axis=1)[:, 0]

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        del key
        logits, activation = apply(variables, images, jnp.zeros((images.shape[0], *shape),
                                                                images.dtype))
        clean = target(logits, targets)

        def drops(points: jax.Array, examples: jax.Array) -> jax.Array:
            channel = jax.nn.one_hot(points, channels, dtype=activation.dtype)  # [c, K]
            removal = -activation[examples] * channel[:, None, None, :]
            ablated = target(apply(variables, images[examples], removal)[0], targets[examples])
            drop = (clean[examples] - ablated) / clean[examples]
            return drop[:, None] * channel

        weights = evaluation_sum(drops, channels, images.shape[0], chunk_size, max_lanes=1)
        coarse = weighted_sum(activation, weights)
        return layers.upsample_to_input(coarse, classifier.input_shape).astype(jnp.float32)

    return attribute


METHOD = Method(name="ablation_cam", make=make, signed=False, stochastic=False, completeness=False,
                family="cam")
