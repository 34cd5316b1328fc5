"""What the gradient-weighted CAM methods share: a layer's activations and gradients, combined
into a coarse map, resized to the input.

Each method of the family (Grad-CAM, Grad-CAM++, HiResCAM, XGrad-CAM, LayerCAM, CAM) differs
only in `combine`, a pure function of the chosen layer's activation and the target logit's
gradient with respect to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from attribution import layers
from attribution._chunked import count_convolutions, split_batch
from attribution.classifier import Classifier
from attribution.method import AttributionFn

# `combine(activation [N, h, w, K], gradient [N, h, w, K]) -> coarse maps [N, h, w]`.
Combine = Callable[[jax.Array, jax.Array], jax.Array]


def coarse_map_fn(classifier: Classifier, layer: str, combine: Combine
                  ) -> Callable[[Any, jax.Array, jax.Array], jax.Array]:
    """`fn(variables, images [N, H, W, C], targets [N]) -> [N, h, w]` at `layer` (resolved)."""
    gradients = layers.layer_gradients(classifier, layer)

    def coarse(variables: Any, images: jax.Array, targets: jax.Array) -> jax.Array:
        activation, grads = gradients(variables, images, targets)
        return combine(activation, grads)

    return coarse


def layer_map_method(classifier: Classifier, layer: str | None, method: str, combine: Combine
                     ) -> AttributionFn:
    """A method whose map is `combine` at `layer`, bilinearly resized to the input.

    Args:
        classifier: The model.
        layer: A layer with an `[h, w, K]` output, by name; None picks the last one.
        method: The method's name, for error messages.
        combine: See `Combine`.

    Returns:
        `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]` float32.

    Raises:
        ValueError: For an unknown or non-spatial layer (the message lists the valid ones).
    """
    coarse = coarse_map_fn(classifier, layers.resolve_layer(classifier, layer, method), combine)
    forward_only = False
    if jax.default_backend() == "cpu":  # Accelerators run one lane whatever the program.
        images = jax.ShapeDtypeStruct((1, *classifier.input_shape), jnp.float32)
        targets = jax.ShapeDtypeStruct((1,), jnp.int32)
        forward = count_convolutions(classifier.logits, classifier.variables, images)
        # A gradient that stops before any convolution leaves only the forward pass's.
        forward_only = 0 < count_convolutions(coarse, classifier.variables, images,
                                              targets) <= forward

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        del key
        maps = coarse(variables, images, targets)
        return layers.upsample_to_input(maps, classifier.input_shape).astype(jnp.float32)

    return split_batch(attribute, forward_only=forward_only)


def weighted_sum(activation: jax.Array, weights: jax.Array) -> jax.Array:
    """`ReLU(sum_k weights_k A_k)`: `[N, h, w, K]` activations, `[N, K]` weights -> `[N, h, w]`."""
    return jax.nn.relu(jnp.einsum("nhwk,nk->nhw", activation, weights))
