"""Shared computation for methods: target-logit gradients and chunked sums over evaluations.

Single-pass methods get the same cache-sized batches from `split_batch`.

Path and noise methods evaluate the model many times per example: at every IG path point,
SmoothGrad sample or occlusion window. Each such (point, example) pair is one evaluation,
one image through the model. `evaluation_sum` runs the evaluations `chunk_size` at a time,
each chunk one batched forward/backward pass, under `lax.scan`, so memory is bounded by
`chunk_size` images whatever the number of examples or steps, and the whole method stays one
jitted program. The loop body's convolutions are put in the layout XLA:CPU runs fast
(`_conv_layout`).

The default chunk size depends on the backend. On CPU the model's activations for a chunk
should fit in cache: on 2 cores a CNN gradient cost about half as much per image at batch
32-64 as at batch 256 or more, so the default is 64. Accelerators want wide batches: 4,096.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from attribution._checks import positive_int
from attribution._conv_layout import canonical_convs
from attribution.classifier import Classifier
from attribution.method import AttributionFn

CPU_CHUNK_SIZE = 64
ACCELERATOR_CHUNK_SIZE = 4096


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


def chunk_size_option(value: int | None) -> int | None:
    """Validates a method's `chunk_size` option: an int >= 1, or None for the default."""
    return None if value is None else positive_int(value, "chunk_size")


def resolve_chunk_size(chunk_size: int | None) -> int:
    """`chunk_size`, or the default for the default backend if it is None."""
    if chunk_size is not None:
        return chunk_size
    return CPU_CHUNK_SIZE if jax.default_backend() == "cpu" else ACCELERATOR_CHUNK_SIZE


def evaluation_sum(fn: Callable[[jax.Array, jax.Array], jax.Array], num_points: int,
                   num_examples: int, chunk_size: int | None) -> jax.Array:
    """Sums `fn` over all (point, example) evaluations, per example, `chunk_size` at a time.

    Evaluation `e` pairs point `e // num_examples` with example `e % num_examples`. Full
    chunks run under `lax.scan`; a shorter last chunk runs once after it, so no padded work is
    done. When everything fits in one chunk there is no loop.

    Args:
        fn: Maps a chunk of evaluations, given as int32 point indices `[c]` and example
            indices `[c]` (`c <= chunk_size`), to one contribution per evaluation `[c, ...]`;
            the trailing shape must not depend on `c`.
        num_points: Points per example (path steps, samples, windows); at least 1.
        num_examples: Examples N; at least 1.
        chunk_size: Evaluations (images through the model) per batched pass; None for the
            backend's default.

    Returns:
        `[N, ...]`: for each example, the sum of its contributions over all points.
    """
    total_evals = num_points * num_examples
    chunk = min(resolve_chunk_size(chunk_size), total_evals)
    n_full, rem = divmod(total_evals, chunk)

    def add_chunk(acc: jax.Array, evals: jax.Array) -> jax.Array:
        points, examples = evals // num_examples, evals % num_examples
        return acc.at[examples].add(fn(points, examples), mode="promise_in_bounds")

    offsets = jnp.arange(chunk, dtype=jnp.int32)
    probe = (offsets // num_examples, offsets % num_examples)
    out = jax.eval_shape(fn, *probe)
    acc = jnp.zeros((num_examples, *out.shape[1:]), out.dtype)
    if n_full == 1:
        acc = add_chunk(acc, offsets)
    else:
        body = canonical_convs(lambda a, start: add_chunk(a, start + offsets))
        starts = jnp.arange(n_full, dtype=jnp.int32) * chunk
        acc, _ = jax.lax.scan(lambda a, start: (body(a, start), None), acc, starts)
    if rem:
        acc = add_chunk(acc, jnp.arange(n_full * chunk, total_evals, dtype=jnp.int32))
    return acc


def split_batch(attribute: AttributionFn, chunk_size: int | None = None) -> AttributionFn:
    """Runs a single-pass method on at most `chunk_size` examples at a time, in one program.

    A batch larger than the chunk runs as `lax.map` over full chunks plus one shorter last
    chunk; a smaller batch runs as is. Valid for any method whose maps do not depend on the
    other examples in the batch; the key is passed unchanged to every chunk.

    Args:
        attribute: `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, ...]`.
        chunk_size: Examples per pass; None for the backend's default.

    Returns:
        A function with `attribute`'s signature and values.
    """

    def run(variables: Any, images: jax.Array, targets: jax.Array, key: jax.Array) -> jax.Array:
        chunk = resolve_chunk_size(chunk_size)
        n_full, rem = divmod(images.shape[0], chunk)
        if n_full == 0 or (n_full == 1 and not rem):
            return attribute(variables, images, targets, key)
        head = n_full * chunk
        body = canonical_convs(lambda x, t: attribute(variables, x, t, key))
        out = jax.lax.map(lambda xt: body(*xt),
                          (images[:head].reshape((n_full, chunk, *images.shape[1:])),
                           targets[:head].reshape((n_full, chunk))))
        out = out.reshape((head, *out.shape[2:]))
        if rem:
            tail = attribute(variables, images[head:], targets[head:], key)
            out = jnp.concatenate([out, tail])
        return out

    return run
