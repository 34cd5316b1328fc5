"""DeepLIFT's rescale rule on a function nobody wrote for it.

DeepLIFT (Shrikumar, Greenside & Kundaje, ICML 2017) explains the difference between an input
and a reference. Through affine operations it propagates exactly what the gradient does;
across an elementwise nonlinearity y = f(a) it replaces the local derivative by the secant
slope between the two points, (f(a) - f(a_ref)) / (a - a_ref) (the derivative itself where
the two are closer than 1e-10, as in Captum). The multipliers that reach the input, times
`input - reference`, then sum to `f(input) - f(reference)` exactly.

We trace the function once (`jax.make_jaxpr`) and evaluate its jaxpr twice in lockstep: one
stream for the input, one for the reference. Equations that do not depend on the input
(parameters, BatchNorm statistics) run once. An affine equation runs on each stream. An
elementwise nonlinearity (a ReLU, `jnp.maximum(x, 0)`, tanh, sigmoid, exp, and activation
functions called by name such as `jax.nn.silu`) gives the input stream the secant slope as
its derivative while keeping its forward value. Anything else that depends on the input
(max pooling, a product of two input-dependent values, a comparison) raises
`NotApplicableError` naming the primitive: the rule has no answer there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.extend.core as jex
import jax.numpy as jnp

from attribution._jaxpr_interpreter import bind, evaluate, sub_jaxpr
from attribution.classifier import NotApplicableError
from attribution.relu_backward import _ACTIVATION_CALLS, _calling_activation

EPSILON = 1e-10

# Call-like primitives whose single sub-jaxpr takes the equation's trailing inputs.
_CALLS = ("jit", "pjit", "closed_call", "core_call", "remat", "remat2", "checkpoint",
          "custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr")
# Affine in every operand.
_AFFINE = frozenset({
    "add", "add_any", "sub", "neg", "reshape", "broadcast_in_dim", "transpose", "squeeze",
    "expand_dims", "reduce_sum", "convert_element_type", "copy", "copy_p", "rev", "slice",
    "concatenate", "reduce_window_sum", "cumsum", "reduce_precision", "pad"})
# Linear in one operand at a time (the other must not depend on the input).
_BILINEAR = frozenset({"mul", "dot_general", "conv_general_dilated"})
# Linear in the operands listed; the others (indices, predicates, divisors) must be constant.
_LINEAR_IN = {"div": (0,), "dynamic_slice": (0,), "gather": (0,), "select_n": None,
              "dynamic_update_slice": (0, 1)}
# Elementwise and nonlinear: the rescale rule applies in their one input-dependent operand.
_ELEMENTWISE = frozenset({
    "exp", "exp2", "log", "log1p", "expm1", "tanh", "logistic", "erf", "erfc", "sqrt", "rsqrt",
    "cbrt", "integer_pow", "pow", "abs", "sin", "cos", "atan", "asinh", "max", "min", "div",
    "square", "sign", "floor", "ceil", "round"})


@dataclasses.dataclass(frozen=True)
class _Pair:
    """An input-dependent value: its input stream and its reference stream."""

    value: Any
    reference: Any


def rescaled(f: Callable[[jax.Array], jax.Array], a: jax.Array, a_ref: jax.Array
             ) -> tuple[jax.Array, jax.Array]:
    """`(f(a), f(a_ref))`, the first with the secant slope as its derivative in `a`."""
    out, ref_out = f(a), f(a_ref)
    delta = a - a_ref
    close = jnp.abs(delta) < EPSILON
    secant = (out - ref_out) / jnp.where(close, 1.0, delta)
    derivative = jax.jvp(f, (a,), (jnp.ones_like(a),))[1]
    slope = jax.lax.stop_gradient(jnp.where(close, derivative, secant))
    # Forward value f(a) exactly; derivative `slope`.
    return jax.lax.stop_gradient(out) + slope * (a - jax.lax.stop_gradient(a)), ref_out


def _unsupported(eqn: jex.JaxprEqn, why: str) -> NotApplicableError:
    activation = _calling_activation(eqn)
    where = f" (inside {activation})" if activation else ""
    return NotApplicableError(
        f"DeepLIFT's rescale rule does not apply to the model's {eqn.primitive.name!r} "
        f"equation{where}: {why}. It handles affine layers (dense, conv, average pooling, "
        "BatchNorm in eval mode, adds) and elementwise activations.")


def _is_activation_call(eqn: jex.JaxprEqn, dependent: list[int]) -> bool:
    name = eqn.params.get("name")
    return (eqn.primitive.name in _CALLS and (name == "relu" or name in _ACTIVATION_CALLS)
            and len(dependent) == 1 and len(eqn.outvars) == 1
            and eqn.outvars[0].aval.shape == eqn.invars[dependent[0]].aval.shape)


def _stream(invals: list[Any], pick: str) -> list[Any]:
    return [getattr(v, pick) if isinstance(v, _Pair) else v for v in invals]


def _step(eqn: jex.JaxprEqn, invals: list[Any]) -> list[Any]:
    """One equation on paired values."""
    dependent = [i for i, v in enumerate(invals) if isinstance(v, _Pair)]
    if not dependent:
        return bind(eqn, eqn.params, invals)
    name = eqn.primitive.name

    def unary(a):
        args = list(_stream(invals, "value"))
        args[dependent[0]] = a
        return bind(eqn, eqn.params, args)[0]

    if _is_activation_call(eqn, dependent):
        pair = invals[dependent[0]]
        return [_Pair(*rescaled(unary, pair.value, pair.reference))]
    if name in _CALLS:
        sub = sub_jaxpr(eqn)
        if sub is None:
            raise _unsupported(eqn, "its body could not be found")
        jaxpr, consts = sub
        return evaluate(jaxpr, consts, invals[len(invals) - len(jaxpr.invars):], _step)
    linear = (name in _AFFINE or (name in _BILINEAR and len(dependent) == 1)
              or (name in _LINEAR_IN and (_LINEAR_IN[name] is None and 0 not in dependent
                                          or _LINEAR_IN[name] is not None
                                          and set(dependent) <= set(_LINEAR_IN[name]))))
    if linear:
        values = bind(eqn, eqn.params, _stream(invals, "value"))
        references = bind(eqn, eqn.params, _stream(invals, "reference"))
        return [_Pair(v, r) for v, r in zip(values, references, strict=True)]
    if name in _ELEMENTWISE and len(dependent) == 1 and len(eqn.outvars) == 1 and (
            eqn.outvars[0].aval.shape == eqn.invars[dependent[0]].aval.shape):
        pair = invals[dependent[0]]
        return [_Pair(*rescaled(unary, pair.value, pair.reference))]
    if name in _BILINEAR or name in _ELEMENTWISE:
        raise _unsupported(eqn, "it combines two input-dependent values")
    raise _unsupported(eqn, "it is neither affine nor an elementwise nonlinearity")


def rescale_apply(fn: Callable[[Any, jax.Array], Any]
                  ) -> Callable[[Any, jax.Array, jax.Array], Any]:
    """`fn(variables, x)` whose derivative in `x` is DeepLIFT's multiplier w.r.t. `reference`.

    Args:
        fn: A pure function `(variables, images [N, H, W, C]) -> outputs` (pytree).

    Returns:
        `g(variables, images, references) -> fn(variables, images)` (same forward values);
        `references` has the images' shape. The gradient of an output w.r.t. `images` is the
        rescale rule's multiplier; the references get no gradient.

    Raises:
        NotApplicableError: At the first call, for an input-dependent equation the rule
            cannot handle (named in the message).
    """

    def apply(variables: Any, images: jax.Array, references: jax.Array) -> Any:
        closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(variables, images)
        leaves = jax.tree.leaves(variables)
        args = [*leaves, _Pair(images, jax.lax.stop_gradient(references))]
        outs = evaluate(closed.jaxpr, closed.consts, args, _step)
        values = [o.value if isinstance(o, _Pair) else o for o in outs]
        return jax.tree.unflatten(jax.tree.structure(out_shape), values)

    return apply
