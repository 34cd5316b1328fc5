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
from attribution.classifier import Classifier, NotApplicableError
from attribution.method import AttributionFn, Method
from attribution.methods._layer_map import layer_map_method

_CHECK_BATCH = 2


def _check_variables(template: Any, rng: np.random.Generator) -> Any:
    """The template's arrays, or random ones (scaled like a fan-in init) where it has shapes.

    Drawn with numpy: XLA on CPU takes seconds to compile threefry for 4-D kernel shapes.
    """
    def draw(leaf):
        if not isinstance(leaf, jax.ShapeDtypeStruct):
            return leaf
        if not jnp.issubdtype(leaf.dtype, jnp.floating):
            return jnp.zeros(leaf.shape, leaf.dtype)
        if len(leaf.shape) >= 2:
            fan_in = int(np.prod(leaf.shape[:-1]))
            return jnp.asarray(rng.standard_normal(leaf.shape) / np.sqrt(fan_in), leaf.dtype)
        # Biases and scales: positive keeps ReLUs alive and variances valid.
        return jnp.asarray(rng.uniform(0.1, 1.1, leaf.shape), leaf.dtype)

    return jax.tree.map(draw, template)


def _check_head(classifier: Classifier, layer: str) -> None:
    """Raises ValueError unless what follows `layer` is global average pooling + dense."""
    rng = np.random.default_rng(0)
    gradients = layers.layer_gradients(classifier, layer)
    variables = _check_variables(classifier.variables, rng)
    images = jnp.asarray(rng.uniform(size=(_CHECK_BATCH, *classifier.input_shape)), jnp.float32)
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
        raise NotApplicableError(
            f"CAM needs a global-average-pool + dense head after layer {layer!r} (with a ReLU "
            "at most in between): the logits' gradient w.r.t. that layer varies over space. "
            "Use grad_cam, which works with any head.")


def _combine(activation: jax.Array, grads: jax.Array) -> jax.Array:
    size = activation.shape[1] * activation.shape[2]
    return size * jnp.sum(activation * grads, axis=-1)


def make(classifier: Classifier, *, layer: str | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`."""
    name = layers.resolve_layer(classifier, layer, "cam")
    _check_head(classifier, name)
    return layer_map_method(classifier, name, "cam", _combine)


METHOD = Method(name="cam", make=make, signed=True, stochastic=False, completeness=False,
                family="cam")
