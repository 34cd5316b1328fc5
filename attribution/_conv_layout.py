"""Give every convolution in a loop body the layout XLA's CPU backend runs fast.

XLA:CPU hands a convolution to its fast kernels (YNNPACK, Eigen) only in the canonical
layout: input and output batch-spatial-feature, kernel spatial-in-out. Its pass that rewrites
other layouts into that one (`ConvCanonicalization`) visits only a program's entry
computation, not the bodies of `while` loops. An input gradient transposes each conv into
one with a spatial-out-in kernel, so inside `lax.scan` / `fori_loop` / `lax.map` that conv
falls back to a generic loop nest. On 2 CPU cores that conv of a small CNN ran 5x slower,
and a `lax.scan` of 64 input gradients 1.5-2.4x slower than the same 64 gradients
dispatched one by one from Python (`benchmarks/loop_formulations.py`).

`canonical_convs(fn)` traces `fn` and evaluates its jaxpr, binding each non-canonical conv
as transposes around a canonical one (what XLA's pass would insert). Same values, same
jaxpr otherwise; convs in nested `jit` calls are found by inlining them. On other backends
the kernel transpose is a copy of a few kilobytes per conv.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.extend.core as jex
import jax.numpy as jnp
import numpy as np

from attribution._jaxpr_interpreter import evaluate, interpreted
from attribution._thin_convs import thin_conv

# Call primitives whose one sub-jaxpr (param "jaxpr") takes exactly the equation's inputs.
_INLINE = ("jit", "pjit", "closed_call", "core_call")


def _canonical_specs(ndim: int) -> jax.lax.ConvDimensionNumbers:
    """(batch, feature, spatial...) positions of batch-spatial-feature data and its kernel."""
    data = (0, ndim - 1, *range(1, ndim - 1))
    kernel = (ndim - 1, ndim - 2, *range(ndim - 2))  # (out, in, spatial...)
    return jax.lax.ConvDimensionNumbers(data, kernel, data)


def _canonical_conv(eqn: jex.JaxprEqn, lhs: Any, rhs: Any) -> Any | None:
    """The conv of `eqn` in canonical layout, or None if it is canonical or grouped."""
    params = dict(eqn.params)
    dims = params["dimension_numbers"]
    canonical = _canonical_specs(np.ndim(lhs))
    if (tuple(map(tuple, dims)) == tuple(map(tuple, canonical))
            or params["feature_group_count"] != 1 or params["batch_group_count"] != 1):
        return None
    lhs_spec, rhs_spec, out_spec = dims
    # The spatial axes keep their order, so strides, padding and dilations still apply.
    lhs = jnp.transpose(lhs, (lhs_spec[0], *lhs_spec[2:], lhs_spec[1]))
    rhs = jnp.transpose(rhs, (*rhs_spec[2:], rhs_spec[1], rhs_spec[0]))
    params["dimension_numbers"] = canonical
    with eqn.ctx.manager:
        out = eqn.primitive.bind(lhs, rhs, **params)
    return jnp.transpose(out, tuple(np.argsort((out_spec[0], *out_spec[2:], out_spec[1]))))


def _rule(eqn: jex.JaxprEqn, invals: list[Any], thin: bool = False) -> list[Any] | None:
    name = eqn.primitive.name
    if name == "conv_general_dilated":
        out = thin_conv(eqn, *invals) if thin else None
        if out is None:
            out = _canonical_conv(eqn, *invals)
        return None if out is None else [out]
    if name in _INLINE and isinstance(eqn.params.get("jaxpr"), jex.ClosedJaxpr):
        sub = eqn.params["jaxpr"]
        return evaluate(sub.jaxpr, sub.consts, invals, functools.partial(_rule, thin=thin))
    return None


def canonical_convs(fn: Callable[..., Any], *, thin: bool = False) -> Callable[..., Any]:
    """Returns `fn` with every convolution bound in XLA:CPU's canonical layout.

    Args:
        fn: A pure function of arrays (pytrees allowed); it is re-traced for the shapes each
            call sees.
        thin: Also write convolutions with one input or one output feature as shifted
            products (`_thin_convs`): for CPU programs with input gradients.

    Returns:
        A function with `fn`'s signature and values; jittable and differentiable.
    """
    return interpreted(fn, functools.partial(_rule, thin=thin))
