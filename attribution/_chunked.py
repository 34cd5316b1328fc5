"""Shared computation for methods: target-logit gradients and chunked passes over evaluations.

Path and noise methods evaluate the model many times per example: at every IG path point,
SmoothGrad sample or occlusion window. Each such (point, example) pair is one evaluation,
one image through the model. `evaluation_sum` runs them `chunk_size` at a time, one pass per
`lax.scan` step, so memory is bounded by `chunk_size` images whatever the number of examples
or steps, and the whole method stays one jitted program. Single-pass methods go through
`split_batch`, which cuts a large probe batch the same way.

How a pass is cut is tuned for XLA:CPU, measured on 2 cores with a small CNN:
- Each pass is split into `lanes` independent sub-batches (one per core, at most 8). XLA runs
  independent operations concurrently, while one input gradient of a 32-64 image batch keeps
  only about 1.2 of the 2 cores busy; two lanes made IG 1.5x faster. (A forward pass keeps
  both cores busy by itself: occlusion runs one lane.)
- A lane holds at most 64 images: the gradient cost per image was about 1.5x higher at batch
  128-1,024 than at 16-64, whose activations stay in cache. Single-pass methods cut the probe
  batch into lanes of 16: at 256 probes (timed alternately in one process) the input
  gradient took 51 ms in lanes of 16, 60 ms in lanes of 64 and about 118 ms as one batch,
  CAM 37 ms against 59 ms (path methods, timed the same way, showed no consistent gain).
- A program whose only convolutions are the model's forward pass (a gradient that stops at
  the last conv layer: Grad-CAM, CAM) keeps both cores busy by itself, as a forward pass does:
  XLA:CPU fuses the forward convolutions into one multi-threaded kernel, while input-gradient
  convolutions run one thread each. Such methods run one lane, in equal passes of at most 128
  images: at 256 probes CAM took 23-25 ms against 32-35 ms in two lanes of 16, Grad-CAM 18
  against 22 ms. A pass of exactly 32 or 64 images ran 3x slower per image than one of 31 or
  33 (inside the fused kernel), so such a pass takes one padding image: CAM at 32 probes 4.9
  ms in one pass of 33 against 5.9 ms in two lanes of 16, at 100 probes 10.6 against 16.7 ms.
  Grad-CAM at the first conv layer, whose gradient crosses a convolution, was 1.4x slower in
  one lane.
- The loop body's convolutions are put in the layout XLA:CPU runs fast (`_conv_layout`), and
  single-pass input gradients of 32 probes or more write convolutions with one input or one
  output feature (a grayscale model's first layer, forward and back) as shifted products
  (`_thin_convs`).
- All passes have the same shape (padded), so the model compiles for one batch size.
Accelerators get one lane of up to 4,096 images.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from attribution._checks import positive_int
from attribution._conv_layout import canonical_convs
from attribution._jaxpr_interpreter import count_equations
from attribution.classifier import Classifier
from attribution.method import AttributionFn

CPU_LANE_SIZE = 64
CPU_SINGLE_PASS_LANE_SIZE = 16
CPU_FORWARD_LANE_SIZE = 128
# Images per pass at which the fused forward kernel of XLA:CPU (YNNPACK) ran 3x slower per image
# than one image more or less (CNN-GAP forward, jax 0.10.2, 2 cores; README, Performance).
SLOW_FORWARD_PASS_SIZES = (32, 64)
# Probes from which single-pass input gradients write thin convolutions as shifted products
# (`_thin_convs`): 4-20% faster at 32 and 256 probes; at 8 and 20 within the noise (0-10%,
# guided backprop slower), while the rewrite added 0.3-0.5 s of tracing and compiling to the
# default run's program (20 probes), paid before its first picture.
THIN_CONV_MIN_PROBES = 32
CPU_MAX_LANES = 8
ACCELERATOR_CHUNK_SIZE = 4096
# Lanes per pass on the CPU when set (else one per core, up to CPU_MAX_LANES): the maps are the
# same in any layout; fewer lanes compile faster (each lane is a copy of the model's program).
# Read when a method is traced; accelerators always run one lane.
LANES_VARIABLE = "ATTRIBUTION_CPU_LANES"


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


def _default_lanes() -> int:
    if jax.default_backend() != "cpu":
        return 1
    value = os.environ.get(LANES_VARIABLE, "")
    if value:
        if not (value.isascii() and value.isdecimal()) or not 1 <= int(value) <= CPU_MAX_LANES:
            raise ValueError(f"{LANES_VARIABLE}={value!r}: expected a whole number of lanes "
                             f"from 1 to {CPU_MAX_LANES} (or unset: one per core).")
        return int(value)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, CPU_MAX_LANES))


def default_chunk_size(lane_size: int = CPU_LANE_SIZE) -> int:
    """Images per pass when `chunk_size` is None: `lane_size` per CPU core (up to 8 cores),
    else 4,096."""
    lanes = _default_lanes()
    return ACCELERATOR_CHUNK_SIZE if jax.default_backend() != "cpu" else lane_size * lanes


def pass_layout(total: int, chunk_size: int | None, max_lanes: int | None = None
                ) -> tuple[int, int, int]:
    """How `total` items are cut into passes: `(passes, lanes, lane_size)`.

    Every pass holds `lanes` sub-batches of `lane_size` items, at most `chunk_size` (None: the
    default) in all; `passes * lanes * lane_size >= total`, with the least padding. `max_lanes`
    caps the lanes (None: one per CPU core, up to 8).
    """
    chunk = default_chunk_size() if chunk_size is None else chunk_size
    lanes = _default_lanes() if max_lanes is None else min(max_lanes, _default_lanes())
    lanes = max(1, min(lanes, chunk, total))
    per_pass = lanes * (chunk // lanes)
    passes = -(-total // per_pass)
    return passes, lanes, -(-total // (passes * lanes))


def _lanes(fn: Callable[..., jax.Array], lanes: int, *indices: jax.Array) -> jax.Array:
    """`fn` on each of `lanes` equal slices of the indices, as independent computations."""
    size = indices[0].shape[0] // lanes
    return jnp.concatenate([fn(*(i[k * size:(k + 1) * size] for i in indices))
                            for k in range(lanes)])


def evaluation_sum(fn: Callable[[jax.Array, jax.Array], jax.Array], num_points: int,
                   num_examples: int, chunk_size: int | None, max_lanes: int | None = None
                   ) -> jax.Array:
    """Sums `fn` over all (point, example) evaluations, per example, pass by pass.

    Evaluation `e` pairs point `e // num_examples` with example `e % num_examples`. Passes are
    cut by `pass_layout` and run under `lax.scan` (no loop for a single pass); padding
    evaluations repeat the last one and contribute zero.

    Args:
        fn: Maps int32 point indices `[c]` and example indices `[c]` (one lane of a pass) to
            one contribution per evaluation `[c, ...]`; the trailing shape must not depend on
            `c`.
        num_points: Points per example (path steps, samples, windows); at least 1.
        num_examples: Examples N; at least 1.
        chunk_size: Evaluations (images through the model) per pass; None for the default.
        max_lanes: At most this many lanes per pass (None: the default). Forward-only work
            wants 1: XLA:CPU keeps the cores busy inside one batched forward pass, and on 2
            cores two lanes of occlusion ran 25% slower than one.

    Returns:
        `[N, ...]`: for each example, the sum of its contributions over all points.
    """
    total = num_points * num_examples
    passes, lanes, lane_size = pass_layout(total, chunk_size, max_lanes)
    offsets = jnp.arange(lanes * lane_size, dtype=jnp.int32)

    def add_pass(acc: jax.Array, start: jax.Array) -> jax.Array:
        evals = jnp.minimum(start + offsets, total - 1)
        examples = evals % num_examples
        values = _lanes(fn, lanes, evals // num_examples, examples)
        if passes * lanes * lane_size > total:
            valid = (start + offsets < total).reshape((-1,) + (1,) * (values.ndim - 1))
            values = jnp.where(valid, values, jnp.zeros_like(values))
        return acc.at[examples].add(values, mode="promise_in_bounds")

    probe = offsets[:lane_size]
    out = jax.eval_shape(fn, probe // num_examples, probe % num_examples)
    acc = jnp.zeros((num_examples, *out.shape[1:]), out.dtype)
    if passes == 1:
        return add_pass(acc, jnp.int32(0))
    body = canonical_convs(add_pass)
    starts = jnp.arange(passes, dtype=jnp.int32) * (lanes * lane_size)
    return jax.lax.scan(lambda a, start: (body(a, start), None), acc, starts)[0]


def count_convolutions(fn: Callable[..., Any], *args: Any) -> int:
    """How many convolutions `fn`'s program holds, nested calls and loops included.

    Args:
        fn: A jittable function.
        *args: Its arguments: arrays or `jax.ShapeDtypeStruct`s (pytrees allowed).
    """
    return count_equations(jax.make_jaxpr(fn)(*args).jaxpr,
                           lambda eqn: eqn.primitive.name == "conv_general_dilated")


def _single_pass_layout(n: int, chunk_size: int | None, forward_only: bool
                        ) -> tuple[int, int, int]:
    on_cpu = jax.default_backend() == "cpu"
    if forward_only and chunk_size is None and on_cpu:
        passes, lanes, lane_size = pass_layout(n, CPU_FORWARD_LANE_SIZE, max_lanes=1)
        # One padding image moves a pass off the sizes XLA:CPU's fused forward runs slowly.
        return passes, lanes, lane_size + (lane_size in SLOW_FORWARD_PASS_SIZES)
    if forward_only and chunk_size is not None:
        return pass_layout(n, chunk_size, max_lanes=1)
    chunk = default_chunk_size(CPU_SINGLE_PASS_LANE_SIZE) if chunk_size is None else chunk_size
    return pass_layout(n, chunk)


def split_batch(attribute: AttributionFn, chunk_size: int | None = None, *,
                forward_only: bool = False) -> AttributionFn:
    """Runs a single-pass method pass by pass (`pass_layout`) over the batch, in one program.

    Padding repeats the last example and its maps are dropped. Valid for any method whose maps
    do not depend on the other examples in the batch; the key goes unchanged to every pass.

    Args:
        attribute: `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, ...]`.
        chunk_size: Examples per pass; None for the default.
        forward_only: The method's program holds no convolution beyond the model's forward
            pass: it runs as one lane, in equal passes of at most `chunk_size` images, or on
            the CPU without a `chunk_size` of at most `CPU_FORWARD_LANE_SIZE`, where a pass of
            32 or 64 images takes one padding image (see the module's notes). Otherwise, on
            the CPU and from `THIN_CONV_MIN_PROBES` probes, its thin convolutions run as
            shifted products (`_thin_convs`).

    Returns:
        A function with `attribute`'s signature and values.
    """

    def run(variables: Any, images: jax.Array, targets: jax.Array, key: jax.Array) -> jax.Array:
        n = images.shape[0]
        passes, lanes, lane_size = _single_pass_layout(n, chunk_size, forward_only)

        def one_pass(index: jax.Array) -> jax.Array:
            return _lanes(lambda i: attribute(variables, images[i], targets[i], key), lanes,
                          index)

        # CPU input gradients: thin convolutions as shifted products (`_thin_convs`), at the
        # program's top level too (where XLA canonicalizes the layouts itself).
        thin = (not forward_only and jax.default_backend() == "cpu"
                and n >= THIN_CONV_MIN_PROBES)

        def top_level(fn: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
            return canonical_convs(fn, thin=True) if thin else fn

        if passes == 1 and lanes == 1 and lane_size == n:
            return top_level(attribute)(variables, images, targets, key)
        index = jnp.minimum(jnp.arange(passes * lanes * lane_size), n - 1)
        if passes == 1:
            return top_level(one_pass)(index)[:n]
        out = jax.lax.map(canonical_convs(one_pass, thin=thin), index.reshape(passes, -1))
        return out.reshape((-1, *out.shape[2:]))[:n]

    return run
