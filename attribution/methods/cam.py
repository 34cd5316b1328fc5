"""Class activation mapping (CAM).

Zhou, Khosla, Lapedriza, Oliva & Torralba, "Learning Deep Features for Discriminative
Localization", CVPR 2016.

For a network ending in global average pooling and one dense layer, CAM_c(h, w) =
sum_k w_{k,c} F_k(h, w), with F the pooled feature maps and w the dense kernel.

We never read the head's parameters (their names are the model's business). With A the
chosen layer's output, F = relu(A) (any positively homogeneous activation works the same)
and y_c the logit, dy_c/dA_k(h, w) = w_{k,c} relu'(A_k(h, w)) / (h w), and since
relu(x) = x relu'(x):  h w sum_k A_k dy_c/dA_k = sum_k w_{k,c} relu(A_k) = CAM_c exactly.
`make` checks the head really is pooling + dense: at the template (or random) parameters,
dy/dA must be constant over space per channel wherever it is nonzero.

The map is not rectified (signed): negative regions count against the class. It is
resized bilinearly to the input's H, W and repeated over its channels.

Options:
  layer: the layer whose (activated) output is pooled, as a name like "Conv_2"; None (the
    default) picks the last layer with an [h, w, C] output.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from attribution import layers
from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method

_CHECK_BATCH = 2


def _check_variables(template: Any, key: jax.Array) -> Any:
    """The template's arrays, or random ones (scaled like a fan-in init) where it has shapes."""
    leaves, treedef = jax.tree.flatten(template)
    out = []
    for i, leaf in enumerate(leaves):
        if not isinstance(leaf, jax.ShapeDtypeStruct):
            out.append(leaf)
        elif not jnp.issubdtype(leaf.dtype, jnp.floating):
            out.append(jnp.zeros(leaf.shape, leaf.dtype))
        elif len(leaf.shape) >= 2:
            fan_in = int(np.prod(leaf.shape[:-1]))
            normal = jax.random.normal(jax.random.fold_in(key, i), leaf.shape, leaf.dtype)
            out.append(normal / np.sqrt(fan_in))
        else:  # Biases and scales: positive keeps ReLUs alive, variances valid.
            uniform = jax.random.uniform(jax.random.fold_in(key, i), leaf.shape, leaf.dtype)
            out.append(0.1 + uniform)
    return jax.tree.unflatten(treedef, out)


def _check_head(classifier: Classifier, layer: str) -> None:
    """Raises ValueError unless what follows `layer` is global average pooling + dense."""
    params_key, images_key = jax.random.split(jax.random.key(0))
    gradients = layers.layer_gradients(classifier, layer)
    variables = _check_variables(classifier.variables, params_key)
    images = jax.random.uniform(images_key,
                                (_CHECK_BATCH, *classifier.input_shape))
    targets = jnp.arange(_CHECK_BATCH, dtype=jnp.int32) % classifier.num_classes
    _, grads = jax.jit(gradients)(variables, images, targets)
    grads = np.asarray(grads, dtype=np.float64).reshape(_CHECK_BATCH, -1, grads.shape[-1])
    nonzero = grads != 0
    if not nonzero.any():
        raise ValueError(f"CAM cannot check the head after layer {layer!r}: the logits' "
                         "gradient w.r.t. it is zero at the check parameters.")
    top = np.where(nonzero, grads, -np.inf).max(axis=1)
    bottom = np.where(nonzero, grads, np.inf).min(axis=1)
    spread = np.where(np.isfinite(top), top - bottom, 0.0)
    if spread.max() > 1e-4 * np.abs(grads).max():
        raise ValueError(
            f"CAM needs a global-average-pool + dense head after layer {layer!r} (with a ReLU "
            "at most in between): the logits' gradient w.r.t. that layer varies over space. "
            "Use grad_cam, which works with any head.")


def make(classifier: Classifier, *, layer: str | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`."""
    name = layers.resolve_layer(classifier, layer, "cam")
    _check_head(classifier, name)
    gradients = layers.layer_gradients(classifier, name)

    def attribute(variables: Any, images: jax.Array, targets: jax.Array,
                  key: jax.Array) -> jax.Array:
        del key
        activation, grads = gradients(variables, images, targets)
        size = activation.shape[1] * activation.shape[2]
        maps = size * jnp.sum(activation * grads, axis=-1)
        return layers.upsample_to_input(maps, classifier.input_shape).astype(jnp.float32)

    return attribute


METHOD = Method(name="cam", make=make, signed=True, stochastic=False, completeness=False)
