"""What the metrics share: per-pixel relevance, model outputs, pixel orderings, digit masks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from attribution.classifier import Classifier

OUTPUTS = ("logit", "probability")
IMAGES_PER_PASS = 256


def check_output(value: str) -> str:
    if value not in OUTPUTS:
        raise ValueError(f"Unknown output {value!r}; valid outputs: {', '.join(OUTPUTS)}.")
    return value


def check_number(value: Any, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False) -> float:
    """`value` as a float inside [low, high] (or (low, high] with `low_open`)."""
    bad = isinstance(value, bool) or not isinstance(value, (int, float, np.floating))
    if not bad:
        bad = (low is not None and (value <= low if low_open else value < low)) or \
              (high is not None and value > high)
    if bad:
        bounds = f"{'(' if low_open else '['}{low if low is not None else '-inf'}, " \
                 f"{high if high is not None else 'inf'}]"
        raise ValueError(f"{name} must be a number in {bounds}; got {value!r}.")
    return float(value)


def target_output(classifier: Classifier, variables: Any, images: jax.Array,
                  targets: jax.Array, output: str) -> jax.Array:
    """The target class's logit, or its softmax probability, for each image: `[N]`."""
    if output == "logit":
        return classifier.target_logit(variables, images, targets)
    logits = classifier.logits(variables, images)
    picked = jnp.take_along_axis(logits, targets[:, None], axis=1)[:, 0]
    return jnp.exp(picked - jax.nn.logsumexp(logits, axis=1))


def pixel_relevance(maps: jax.Array) -> jax.Array:
    """Per-pixel relevance `[N, H * W]`: the channel sum of maps `[N, H, W, C]`."""
    return jnp.sum(maps, axis=-1).reshape(maps.shape[0], -1)


def pixel_mask_to_images(mask: jax.Array, images: jax.Array) -> jax.Array:
    """A per-pixel mask `[N, H * W]` broadcast to the images' shape `[N, H, W, C]`."""
    return jnp.broadcast_to(mask.reshape(*images.shape[:3], 1), images.shape)


def stroke_masks(images: jax.Array, threshold: float) -> jax.Array:
    """The digit's own strokes as the object: bool `[N, H * W]`, pixels whose channel mean
    exceeds `threshold` of the way from the image's minimum to its maximum."""
    values = jnp.mean(images, axis=-1).reshape(images.shape[0], -1)
    low = jnp.min(values, axis=1, keepdims=True)
    high = jnp.max(values, axis=1, keepdims=True)
    return values > low + threshold * (high - low)


def pearson(a: jax.Array, b: jax.Array) -> jax.Array:
    """Pearson correlation along the last axis (0 where either side is constant)."""
    a = a - jnp.mean(a, axis=-1, keepdims=True)
    b = b - jnp.mean(b, axis=-1, keepdims=True)
    norm = jnp.sqrt(jnp.sum(a * a, axis=-1) * jnp.sum(b * b, axis=-1))
    return jnp.where(norm > 0, jnp.sum(a * b, axis=-1) / jnp.where(norm > 0, norm, 1.0), 0.0)


def over_steps(step: Callable[[jax.Array], Any], steps: int, num_examples: int) -> Any:
    """`step(s)` for s in 0..steps-1, stacked along a new first axis (any pytree of `[N, ...]`).

    One `lax.map` over the steps, several steps per forward pass (about 256 images), so memory
    stays bounded by the pass and the model compiles once.
    """
    per_pass = max(1, min(steps, IMAGES_PER_PASS // max(num_examples, 1)))
    return jax.lax.map(step, jnp.arange(steps), batch_size=per_pass)


def outputs_over_steps(images_at: Callable[[jax.Array], jax.Array], steps: int,
                       output_of: Callable[[jax.Array], jax.Array], num_examples: int
                       ) -> jax.Array:
    """`output_of(images_at(s))` for s in 0..steps-1: `[steps, N]`."""
    return over_steps(lambda s: output_of(images_at(s)), steps, num_examples)


def check_int(value: Any, name: str, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an int >= {low}; got {value!r}.")
    return int(value)
