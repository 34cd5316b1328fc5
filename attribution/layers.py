"""Activations and gradients of a named layer, on a model not written for it.

`attribution.model_kinds.interception` lets us watch (and change) what every
submodule's `__call__` returns while the model runs, for linen and NNX models
alike, so no hooks are needed in the model. A layer's public name is its path
joined with "/": "Conv_1", "Block_0/Conv_1" (linen), "conv2", "blocks/0/conv"
(NNX). The hooks are global during the call, so a plain apply function that
calls `module.apply` inside works as well as a Module.

Note that a Flax model which applies `nn.relu` as a function has no module for
the activation: a conv layer's output is its pre-activation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier, NotApplicableError
from attribution.model_kinds import intercept

_PROBE_BATCH = 2


@dataclasses.dataclass(frozen=True)
class _Layer:
    shape: tuple[int, ...]  # per example
    dtype: Any
    calls: int


def _probe(classifier: Classifier) -> dict[str, _Layer]:
    """Every layer with a batched array output, in the order of its first call."""
    found: dict[str, _Layer] = {}

    def record(call_next, layer):
        out = call_next()
        shape = getattr(out, "shape", None)
        if shape is not None and len(shape) >= 1 and shape[0] == _PROBE_BATCH:
            calls = found[layer.name].calls + 1 if layer.name in found else 1
            found[layer.name] = _Layer(tuple(shape[1:]), out.dtype, calls)
        return out

    images = jax.ShapeDtypeStruct((_PROBE_BATCH, *classifier.input_shape), jnp.float32)
    with intercept(record):
        # A fresh function each time: eval_shape caches traces by function, and a cached trace
        # would skip the interceptor.
        jax.eval_shape(lambda v, x: classifier.apply_fn(v, x), classifier.variables, images)
    return found


def layer_output_shapes(classifier: Classifier) -> dict[str, tuple[int, ...]]:
    """Per-example output shape of every layer, in call order (no real compute).

    Args:
      classifier: the model.

    Returns:
      {layer name: shape without the batch axis}, e.g. {"Conv_0": (28, 28, 32), ...}.
    """
    return {name: layer.shape for name, layer in _probe(classifier).items()}


def spatial_layers(classifier: Classifier) -> list[str]:
    """Names of the layers with a spatial [h, w, C] output, in call order."""
    return [name for name, shape in layer_output_shapes(classifier).items() if len(shape) == 3]


def resolve_layer(classifier: Classifier, layer: str | None, method: str) -> str:
    """Validates a layer with a spatial output; None picks the last one.

    Args:
      classifier: the model.
      layer: a layer name, or None for the last layer with an [h, w, C] output.
      method: the method's name, for error messages.

    Returns:
      The layer name.

    Raises:
      ValueError: the layer is unknown, not spatial, or called more than once per forward.
    """
    found = _probe(classifier)
    spatial = [name for name, info in found.items() if len(info.shape) == 3]
    if layer is None:
        if not spatial:
            shapes = ", ".join(f"{n} {list(i.shape)}" for n, i in found.items()) or "none"
            raise NotApplicableError(
                f"{method} needs a layer with a spatial [h, w, C] output and the model has "
                f"none (valid layers: none; the model's layers: {shapes}).")
        layer = spatial[-1]
    if layer not in spatial:
        why = (f"its output {list(found[layer].shape)} is not [h, w, C]" if layer in found
               else "no such layer")
        raise ValueError(f"{method}: layer {layer!r} does not apply ({why}); valid layers: "
                         f"{', '.join(spatial) or 'none'}.")
    if found[layer].calls > 1:
        raise ValueError(f"{method}: layer {layer!r} is called {found[layer].calls} times per "
                         "forward pass, so its activation is ambiguous; pick another layer.")
    return layer


def perturbed_apply(classifier: Classifier, layer: str) -> Callable[..., tuple[jax.Array, Any]]:
    """The model with `layer`'s output replaced by `output + perturbation`.

    Args:
      classifier: the model.
      layer: a layer name from `layer_output_shapes`.

    Returns:
      `fn(variables, images [N, H, W, C], perturbation [N, *layer shape]) -> (logits [N, K],
      activation [N, *layer shape])`. The gradient of a logit w.r.t. `perturbation` at zero
      is its gradient w.r.t. the layer's activation.
    """
    path = tuple(layer.split("/"))

    def apply(variables, images, perturbation):
        captured = []

        def replace(call_next, called):
            out = call_next()
            if called.path == path:
                if captured:
                    raise ValueError(f"Layer {layer!r} is called more than once per forward.")
                captured.append(out)
                return out + perturbation
            return out

        with intercept(replace):
            logits = classifier.apply_fn(variables, images)
        if not captured:
            raise ValueError(f"Layer {layer!r} was not called (an apply function that is "
                             "itself jitted may replay a trace made without the hook).")
        return logits, captured[0]

    return apply


def layer_gradients(classifier: Classifier, layer: str) -> Callable[..., tuple[jax.Array, ...]]:
    """Activations of `layer` and the target logit's gradient with respect to them.

    Returns:
      `fn(variables, images [N, H, W, C], targets int [N]) -> (activation [N, *s],
      gradient [N, *s])` with `s` the layer's per-example output shape.
    """
    apply = perturbed_apply(classifier, layer)
    info = _probe(classifier)[layer]

    def gradients(variables, images, targets):
        def total(perturbation):
            logits, activation = apply(variables, images, perturbation)
            picked = jnp.take_along_axis(logits, targets[:, None], axis=1)
            # Examples are independent, so the gradient of the sum is per example.
            return jnp.sum(picked), activation

        zeros = jnp.zeros((images.shape[0], *info.shape), info.dtype)
        grads, activation = jax.grad(total, has_aux=True)(zeros)
        return activation, grads

    return gradients


def upsample_to_input(maps: jax.Array, input_shape: tuple[int, int, int]) -> jax.Array:
    """Bilinearly resizes [N, h, w] maps to the input's [N, H, W, C] (same map per channel)."""
    height, width, channels = input_shape
    resized = jax.image.resize(maps, (maps.shape[0], height, width), method="bilinear")
    return jnp.broadcast_to(resized[..., None], (*resized.shape, channels))
