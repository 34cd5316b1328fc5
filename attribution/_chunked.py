"""Shared computation for methods: target-logit gradients and chunked sums over an extra axis.

Path and noise methods evaluate the model at many points per example (IG steps, SmoothGrad
samples, occlusion windows). They fold a chunk of those points into the batch axis, so one
chunk is one batched forward/backward pass, and `lax.scan` over chunks keeps memory bounded:
256 probes x 128 steps never materialize at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier


def target_logit_grad(
    classifier: Classifier, variables: Any, images: jax.Array, targets: jax.Array
) -> jax.Array:
    """Gradient of each example's target logit w.r.t. its image.

    Differentiates the batch sum of target logits: examples do not interact in an inference
    forward pass, so each example's gradient is that of its own logit.

    Args:
        classifier: The model.
        variables: Its variables.
        images: Images `[N, H, W, C]`.
        targets: Class indices int32 `[N]`.

    Returns:
        Gradients `[N, H, W, C]`.
    """

    def total(x: jax.Array) -> jax.Array:
        return jnp.sum(classifier.target_logit(variables, x, targets))

    return jax.grad(total)(images)


def fold(x: jax.Array) -> jax.Array:
    """Merges the two leading axes: `[c, N, ...] -> [c * N, ...]`."""
    return x.reshape((x.shape[0] * x.shape[1], *x.shape[2:]))


def unfold(x: jax.Array, c: int) -> jax.Array:
    """Splits the leading axis: `[c * N, ...] -> [c, N, ...]`."""
    return x.reshape((c, x.shape[0] // c, *x.shape[1:]))


def folded_grad(
    classifier: Classifier, variables: Any, images: jax.Array, targets: jax.Array
) -> jax.Array:
    """`target_logit_grad` for a stack of batches in one pass: `[c, N, H, W, C]` -> same shape.

    `targets [N]` applies to every batch in the stack.
    """
    c = images.shape[0]
    grads = target_logit_grad(classifier, variables, fold(images), jnp.tile(targets, c))
    return unfold(grads, c)


def folded_target_logit(
    classifier: Classifier, variables: Any, images: jax.Array, targets: jax.Array
) -> jax.Array:
    """Target logits for a stack of batches `[c, N, H, W, C]` in one pass -> `[c, N]`."""
    c = images.shape[0]
    return unfold(classifier.target_logit(variables, fold(images), jnp.tile(targets, c)), c)


def chunked_sum(fn: Callable[[jax.Array], Any], num: int, chunk_size: int) -> Any:
    """Returns the sum of `fn` over the chunks of the indices `0 .. num - 1`.

    Full chunks of `chunk_size` indices run under `lax.scan`; a shorter last chunk runs once after
    it, so no padded work is done. With `chunk_size >= num` everything is one call, no loop.

    Args:
        fn: Maps int32 indices `[c]` (one chunk, `c <= chunk_size`) to a pytree that is already
            summed over the chunk; its shapes must not depend on `c`.
        num: Number of indices; at least 1.
        chunk_size: Indices per chunk; at least 1.

    Returns:
        The pytree sum of `fn` over all chunks.
    """
    chunk = min(chunk_size, num)
    n_full, rem = divmod(num, chunk)
    starts = jnp.arange(n_full, dtype=jnp.int32) * chunk
    offsets = jnp.arange(chunk, dtype=jnp.int32)
    if n_full == 1:
        total = fn(offsets)
    else:
        init = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(fn, offsets))

        def body(carry: Any, start: jax.Array) -> tuple[Any, None]:
            return jax.tree.map(jnp.add, carry, fn(start + offsets)), None

        total, _ = jax.lax.scan(body, init, starts)
    if rem:
        tail = fn(jnp.arange(n_full * chunk, num, dtype=jnp.int32))
        total = jax.tree.map(jnp.add, total, tail)
    return total
