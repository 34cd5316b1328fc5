"""Eigen-CAM.

Muhammad & Yeasin, "Eigen-CAM: Class Activation Map using Principal Components", IJCNN 2020.

Class-agnostic: the map is the layer's activations projected on their first principal
component. With A the layer's output reshaped to [h w, K] and centred over positions,
A = U S V^T, the map is ReLU(A v_1) on the [h, w] grid (as pytorch-grad-cam computes it; v_1
is found as the top eigenvector of A^T A or A A^T, without an SVD: see `_top_eigenvector`). The
sign of a singular vector is arbitrary; v_1 is oriented so that it points along the mean
activation (positive mean . v_1), so the same activations always give the same map.

Options:
  layer: a layer with an [h, w, C] output, by name; None picks the last one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from attribution.classifier import Classifier
from attribution.method import AttributionFn, Method
from attribution.methods._layer_map import layer_map_method

_SQUARINGS = 8  # The Gram matrix raised to the 256th power: gap ratio r becomes r^256.
_POWER_STEPS = 32  # Then power steps with that power: r^8192 (r = 0.999 leaves 3e-4).


def _matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def _normalized(x: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    norm = jnp.sqrt(jnp.sum(x * x, axis=axes, keepdims=True))
    return x / jnp.maximum(norm, jnp.finfo(x.dtype).tiny)


def _top_eigenvector(gram: jax.Array) -> jax.Array:
    """The unit eigenvector of the largest eigenvalue of each [D, D] PSD matrix in `gram`
    [N, D, D] (entries of order one); zero where a matrix is zero.

    By repeated squaring and power steps, all batched matmuls. Batched SVD and eigh run one
    matrix at a time (a loop of LAPACK or cuSOLVER calls): with the SVD the method took 3.4x
    as long at 256 probes on 2 CPU cores (D = 64), and 392 ms on an H200; eigh of the Gram
    matrices took 2.2x as long as this on the CPU. It matches LAPACK's eigenvector to float32
    rounding (1.4e-7) down to a 1% gap between the two largest eigenvalues, and to 1e-4 at a
    0.1% gap, where float32 itself pins the vector only to about that.
    """
    power = jax.lax.fori_loop(0, _SQUARINGS, lambda _, p: _normalized(_matmul(p, p), (1, 2)),
                              _normalized(gram, (1, 2)))
    # The power is close to rank one, v v^T: its largest column is along v.
    column = jnp.argmax(jnp.sum(power * power, axis=1), axis=-1)
    v = jnp.take_along_axis(power, column[:, None, None], axis=2)
    v = jax.lax.fori_loop(0, _POWER_STEPS, lambda _, v: _normalized(_matmul(power, v), (1,)),
                          _normalized(v, (1,)))
    # Two steps with the matrix itself take off the rounding of the power.
    v = _normalized(_matmul(gram, _normalized(_matmul(gram, v), (1,))), (1,))
    return v[..., 0]


def _top_right_singular_vector(a: jax.Array) -> jax.Array:
    """v_1 of each A = U S V^T in `a` [N, P, K], unit length ([N, K]; zero for A = 0)."""
    wide = a.shape[1] < a.shape[2]
    # Fewer positions than channels: the smaller Gram matrix A A^T, whose top eigenvector u
    # gives v_1 = A^T u / |A^T u| (squaring costs D^3).
    gram = jnp.einsum("npk,nqk->npq" if wide else "npk,npl->nkl", a, a,
                      precision=jax.lax.Precision.HIGHEST)
    # The direction does not depend on A's scale: at unit maximum the squarings' sums of
    # squares neither underflow nor overflow.
    scale = jnp.max(jnp.abs(gram), axis=(1, 2), keepdims=True)
    top = _top_eigenvector(gram / jnp.where(scale > 0, scale, 1.0))
    if wide:
        return _normalized(jnp.einsum("npk,np->nk", a, top,
                                      precision=jax.lax.Precision.HIGHEST), (1,))
    return top


def combine(activation: jax.Array, grads: jax.Array) -> jax.Array:
    del grads  # Unused: jit drops the backward pass.
    n, h, w, k = activation.shape
    flat = activation.reshape(n, h * w, k)
    mean = jnp.mean(flat, axis=1, keepdims=True)
    centred = flat - mean
    top = _top_right_singular_vector(centred)  # [N, K]
    sign = jnp.where(jnp.sum(top * mean[:, 0, :], axis=-1) < 0, -1.0, 1.0)
    projection = jnp.einsum("npk,nk->np", centred, top * sign[:, None],
                            precision=jax.lax.Precision.HIGHEST)
    return jax.nn.relu(projection.reshape(n, h, w))


def make(classifier: Classifier, *, layer: str | None = None) -> AttributionFn:
    """Returns `fn(variables, images [N, H, W, C], targets [N], key) -> maps [N, H, W, C]`."""
    return layer_map_method(classifier, layer, "eigen_cam", combine)


METHOD = Method(name="eigen_cam", make=make, signed=False, stochastic=False, completeness=False,
                family="cam")
