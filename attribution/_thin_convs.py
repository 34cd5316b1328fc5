"""Convolutions with one input or one output feature, written as shifted products for XLA:CPU.

A gradient w.r.t. a grayscale image crosses two such convolutions: the first layer's forward
pass (1 input feature) and its input gradient (1 output feature). XLA:CPU runs them through the
same kernels as wide convolutions, at 10-14 GFLOP/s per thread against about 90 for the
second layer's (profiled on 2 cores, 16-digit lanes of the trainer's CNN): a fifth of the
gradient pass's thread time went into them. As sums of shifted slices they are one fused
elementwise loop (1 input feature) or one matmul plus one such loop (1 output feature):
0.13 ms against 0.2-0.28 ms and 0.35 ms against 0.68 ms for 16 digits. Single-pass methods
ran 4-20% faster at 32 and 256 probes (README, Performance). The same values up to float
rounding (the sum runs in another order).

Forward-only programs keep XLA's convolutions: XLA:CPU fuses a forward pass's convolutions into
one multi-threaded kernel, and CAM / Grad-CAM ran 8-40% slower with the first one rewritten.
IG's path gradients (lanes of 64 images inside a loop) ran 4-10% slower and keep them too;
SmoothGrad's base gradients, built as a single-pass method, take the rewrite (4-7% faster).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.extend.core as jex
import jax.numpy as jnp
import numpy as np

# Kernels with more taps are left to XLA (each tap is one slice and add in the program): a
# weight gradient's "kernel", for one, is a whole activation map.
MAX_TAPS = 49


def _applies(eqn: jex.JaxprEqn, lhs: Any, rhs: Any) -> bool:
    """A 2-D, float32, ungrouped convolution with unit strides and dilations, at most
    `MAX_TAPS` taps."""
    params = eqn.params
    rhs_spec = params["dimension_numbers"][1]
    return (np.ndim(lhs) == 4 and lhs.dtype == rhs.dtype == jnp.float32
            and np.prod([rhs.shape[d] for d in rhs_spec[2:]]) <= MAX_TAPS
            and params["preferred_element_type"] in (None, jnp.float32)
            and params["feature_group_count"] == 1 and params["batch_group_count"] == 1
            and all(s == 1 for s in (*params["window_strides"], *params["lhs_dilation"],
                                     *params["rhs_dilation"])))


def thin_conv(eqn: jex.JaxprEqn, lhs: Any, rhs: Any) -> Any | None:
    """`eqn`'s convolution as shifted products if it has one input or one output feature.

    Args:
        eqn: A `conv_general_dilated` equation.
        lhs: Its input, in the equation's layout.
        rhs: Its kernel, in the equation's layout.

    Returns:
        The output in the equation's layout, or None where the rewrite does not apply (other
        shapes, strides, dilations, groups or dtypes): the caller binds the convolution.
    """
    if not _applies(eqn, lhs, rhs):
        return None
    lhs_spec, rhs_spec, out_spec = eqn.params["dimension_numbers"]
    if lhs.shape[lhs_spec[1]] != 1 and rhs.shape[rhs_spec[0]] != 1:
        return None
    x = jnp.transpose(lhs, (lhs_spec[0], *lhs_spec[2:], lhs_spec[1]))  # N H W C
    k = jnp.transpose(rhs, (*rhs_spec[2:], rhs_spec[1], rhs_spec[0]))  # KH KW C O
    with eqn.ctx.manager:
        (lo_h, hi_h), (lo_w, hi_w) = eqn.params["padding"]  # Negative for a transpose's crop.
        x = jax.lax.pad(x, jnp.zeros((), x.dtype),
                        ((0, 0, 0), (lo_h, hi_h, 0), (lo_w, hi_w, 0), (0, 0, 0)))
        out = (_one_input_feature(x, k) if x.shape[-1] == 1
               else _one_output_feature(x, k, eqn.params["precision"]))
    return jnp.transpose(out, tuple(np.argsort((out_spec[0], *out_spec[2:], out_spec[1]))))


def _taps(x: jax.Array, k: jax.Array) -> list[tuple[int, int, slice, slice]]:
    """Each kernel tap (i, j) and the slices of the padded input it reads for every output."""
    kh, kw = k.shape[:2]
    h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    return [(i, j, slice(i, i + h), slice(j, j + w)) for i in range(kh) for j in range(kw)]


def _one_input_feature(x: jax.Array, k: jax.Array) -> jax.Array:
    """out[n, y, x, :] = sum_ij x[n, y + i, x + j, 0] k[i, j, 0, :], for padded `x` [N H W 1]."""
    return sum(x[:, rows, cols, :] * k[i, j, 0] for i, j, rows, cols in _taps(x, k))


def _one_output_feature(x: jax.Array, k: jax.Array, precision: Any) -> jax.Array:
    """out[n, y, x, 0] = sum_ij x[n, y + i, x + j, :] . k[i, j, :, 0], for padded `x`.

    One matmul gives every tap's product at every input pixel; the sum shifts and adds them.
    """
    kh, kw, c, _ = k.shape
    products = jnp.einsum("nhwc,cq->nhwq", x, k[..., 0].reshape(kh * kw, c).T,
                          precision=precision)
    return sum(products[:, rows, cols, i * kw + j] for i, j, rows, cols in _taps(x, k))[..., None]
