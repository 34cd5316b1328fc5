"""Deletion and insertion curves: does removing the top-attributed pixels hurt the class most?

Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box
Models", BMVC 2018 (deletion and insertion metrics). Pixels are ordered by attribution
(channel sum, most positive first; ties by position). Deletion sets the top `k / steps`
fraction of pixels to the baseline (0 = black) for `k = 0 .. steps` and records the target
class probability: a faithful map makes it fall fast (low area). Insertion starts from the
baseline image and restores pixels in the same order: a faithful map makes it rise fast
(high area). Areas use the trapezoid rule over the fraction of pixels in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from attribution._checks import positive_int
from attribution.classifier import as_classifier

DEFAULT_STEPS = 20


def auc(curves: jax.Array) -> jax.Array:
    """Trapezoid area under curves `[N, steps + 1]` sampled evenly on [0, 1] -> `[N]`."""
    steps = curves.shape[-1] - 1
    if steps < 1:
        raise ValueError(f"curves need at least 2 points; got shape {curves.shape}.")
    return (jnp.sum(curves, axis=-1) - (curves[..., 0] + curves[..., -1]) / 2) / steps


def make_faithfulness(
    model: Any, variables: Any, input_shape: tuple[int, int, int], *,
    steps: int = DEFAULT_STEPS, baseline: float = 0.0, chunk_size: int = 7,
) -> Callable[[Any, jax.Array, jax.Array, jax.Array], dict[str, jax.Array]]:
    """Builds deletion and insertion for a model, jittable over the probe batch.

    Args:
        model: A `flax.linen.Module`, an apply function, or a `Classifier`.
        variables: The model's variables (or a matching pytree of `jax.ShapeDtypeStruct`s).
        input_shape: Per-example image shape `(H, W, C)`.
        steps: Number of deletion / insertion steps (the curves have `steps + 1` points).
        baseline: Value of a removed pixel (deletion) and of the starting image (insertion).
        chunk_size: Curve points evaluated per batched forward pass (bounds memory at
            `2 * chunk_size * N` images).

    Returns:
        `fn(variables, images [N, H, W, C], targets int32 [N], maps [N, H, W, C]) ->
        {"deletion_curve": [N, steps + 1], "insertion_curve": [N, steps + 1],
        "deletion_auc": [N], "insertion_auc": [N]}`, target probabilities, float32.

    Raises:
        ValueError: If `steps` or `chunk_size` is not a positive int.
    """
    steps = positive_int(steps, "steps")
    chunk_size = min(positive_int(chunk_size, "chunk_size"), steps + 1)
    if isinstance(baseline, bool) or not isinstance(baseline, (int, float, np.floating)):
        raise ValueError(f"baseline must be a number; got {baseline!r}.")
    classifier = as_classifier(model, variables, input_shape)
    pixels = input_shape[0] * input_shape[1]
    counts = np.round(np.arange(steps + 1) * pixels / steps).astype(np.int32)
    # Curve points in chunks of `chunk_size`; the last chunk repeats the final point.
    num_chunks = -(-(steps + 1) // chunk_size)
    padded = np.full(num_chunks * chunk_size, counts[-1], np.int32)
    padded[: steps + 1] = counts

    def probabilities(variables, images, targets):
        logits = classifier.logits(variables, images)
        picked = jnp.take_along_axis(logits, targets[:, None], axis=1)[:, 0]
        return jnp.exp(picked - jax.nn.logsumexp(logits, axis=1))

    def curves(variables: Any, images: jax.Array, targets: jax.Array,
               maps: jax.Array) -> dict[str, jax.Array]:
        if maps.shape != images.shape:
            raise ValueError(f"maps {maps.shape} must have the images' shape {images.shape}.")
        n = images.shape[0]
        scores = jnp.sum(maps, axis=-1).reshape(n, pixels)
        order = jnp.argsort(-scores, axis=1, stable=True)  # ties keep pixel order
        ranks = jnp.argsort(order, axis=1).reshape(n, *input_shape[:2], 1)
        base = jnp.asarray(baseline, images.dtype)
        targets = targets.astype(jnp.int32)

        def chunk(removed: jax.Array) -> jax.Array:
            gone = ranks[None] < removed[:, None, None, None, None]  # [c, N, H, W, 1]
            deleted = jnp.where(gone, base, images[None])
            inserted = jnp.where(gone, images[None], base)
            batch = jnp.concatenate([deleted, inserted]).reshape(-1, *images.shape[1:])
            probs = probabilities(variables, batch, jnp.tile(targets, 2 * removed.shape[0]))
            return probs.reshape(2, removed.shape[0], n)

        out = jax.lax.map(chunk, jnp.asarray(padded).reshape(num_chunks, chunk_size))
        out = jnp.moveaxis(out, 0, 1).reshape(2, -1, n)[:, : steps + 1]  # [2, steps + 1, N]
        deletion, insertion = out[0].T, out[1].T
        return {"deletion_curve": deletion, "insertion_curve": insertion,
                "deletion_auc": auc(deletion), "insertion_auc": auc(insertion)}

    return curves


def _run(model, variables, images, targets, maps, steps, baseline) -> dict[str, jax.Array]:
    images = jnp.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C]; got shape {images.shape}.")
    fn = make_faithfulness(model, variables, tuple(int(d) for d in images.shape[1:]),
                           steps=steps, baseline=baseline)
    return jax.jit(fn)(variables, images, jnp.asarray(targets), jnp.asarray(maps))


def deletion_auc(model: Any, variables: Any, images: jax.Array, targets: jax.Array,
                 maps: jax.Array, *, steps: int = DEFAULT_STEPS, baseline: float = 0.0
                 ) -> tuple[jax.Array, jax.Array]:
    """Deletion area and curve: `(auc [N], curve [N, steps + 1])`; lower is more faithful."""
    out = _run(model, variables, images, targets, maps, steps, baseline)
    return out["deletion_auc"], out["deletion_curve"]


def insertion_auc(model: Any, variables: Any, images: jax.Array, targets: jax.Array,
                  maps: jax.Array, *, steps: int = DEFAULT_STEPS, baseline: float = 0.0
                  ) -> tuple[jax.Array, jax.Array]:
    """Insertion area and curve: `(auc [N], curve [N, steps + 1])`; higher is more faithful."""
    out = _run(model, variables, images, targets, maps, steps, baseline)
    return out["insertion_auc"], out["insertion_curve"]
