"""Score-CAM.

Wang, Wang, Du, Yang, Zhang, Ding, Mardziel & Hu, "Score-CAM: Score-Weighted Visual
Explanations for Convolutional Neural Networks", CVPR Workshops 2020.

Gradient-free: each channel of the layer's activated output A = ReLU(output) [h, w, K] is
upsampled to the input size,
min-max normalized to [0, 1] (plus 1e-8 in the denominator) and used as a mask on the image;
the target logit of each masked image, softmax-normalized over the K channels, weighs the
channels, and the map is ReLU(sum_k w_k A_k). This is pytorch-grad-cam's formulation, masks
upsampled with corners aligned as there; the paper's reference code weighs by the target's
class probability instead. The ReLU: Score-CAM's weights are all positive, so its channels must
be non-negative feature maps, as in the paper's networks; a Flax model that applies `nn.relu` as
a function has no activation module, and a conv layer's output is its pre-activation (on an
output that is already activated the ReLU changes nothing). Costs K forward passes per image,
run `chunk_size` masked images at a time.

Options:
  layer: a layer with an [h, w, C] output, by name; None picks the last one.
  chunk_size: masked images per forward pass; None: 64 per CPU core (up to 8), 4,096 on
    accelerators.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from attribution import layers
from attribution._chunked import chunk_size_option, evaluation_sum
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method
from attribution.methods._layer_map import weighted_sum

EPSILON = 1e-8


def corner_aligned_resize_matrix(size_out: int, size_in: int) -> np.ndarray:
    """`[size_out, size_in]` bilinear weights with the first and last samples aligned."""
    matrix = np.zeros((size_out, size_in), np.float32)
    scale = (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
    for i in range(size_out):
        source = i * scale
        low = min(int(np.floor(source)), size_in - 1)
        high = min(low + 1, size_in - 1)
        frac = source - low
        matrix[i, low] += 1 - frac
        matrix[i, high] += frac
    return matrix


def make(classifier: Classifier, *, layer: str | None = None,
         chunk_size: int | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`."""
    name = layers.resolve_layer(classifier, layer, "score_cam")
    chunk_size = chunk_size_option(chunk_size)
    h, w, channels = layers.layer_output_shapes(classifier)[name]
    height, width, _ = classifier.input_shape
    rows = corner_aligned_resize_matrix(height, h)
    cols = corner_aligned_resize_matrix(width, w)
    apply = layers.perturbed_apply(classifier, name)

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        del key
        zeros = jnp.zeros((images.shape[0], h, w, channels), images.dtype)
        activation = jax.nn.relu(apply(variables, images, zeros)[1])

        def scores(points: jax.Array, examples: jax.Array) -> jax.Array:
            coarse = activation[examples, :, :, points]  # [c, h, w]
            mask = jnp.einsum("Hh,chw,Ww->cHW", rows, coarse, cols,
                              precision=jax.lax.Precision.HIGHEST)
            low = mask.min(axis=(1, 2), keepdims=True)
            high = mask.max(axis=(1, 2), keepdims=True)
            mask = (mask - low) / (high - low + EPSILON)
            logit = classifier.target_logit(variables, images[examples] * mask[..., None],
                                            targets[examples])
            return logit[:, None] * jax.nn.one_hot(points, channels, dtype=logit.dtype)

        table = evaluation_sum(scores, channels, images.shape[0], chunk_size, max_lanes=1)
        coarse = weighted_sum(activation, jax.nn.softmax(table, axis=-1))
        return layers.upsample_to_input(coarse, classifier.input_shape).astype(jnp.float32)

    return attribute


METHOD = Method(name="score_cam", make=make, signed=False, stochastic=False, completeness=False,
                family="cam")
