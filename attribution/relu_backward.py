"""Replace the backward pass of every ReLU in a function nobody wrote for it.

Guided backpropagation and DeconvNet differ from the plain gradient only in
how the gradient crosses a ReLU. Rather than asking models to call a special
activation, we trace the model once with `jax.make_jaxpr` and evaluate the
jaxpr with a small interpreter that swaps each ReLU for a `jax.custom_vjp`
one. Everything else is bound as traced, so the result stays jittable and
composes with `grad` and `vmap`.

A ReLU is recognised as

* a `custom_jvp_call` named "relu" (what `jax.nn.relu` and `flax.linen.relu`
  trace to, even when imported by name), or
* a plain `max(x, 0)` with the zero as the second operand
  (`jnp.maximum(x, 0.0)`). `max(0, x)` is left alone on purpose: Flax's
  normalization layers clamp their variance that way, and rectifying the
  gradient of a variance is not what either rule means.

ReLUs nested in `jit`, `remat` and custom-derivative calls are found by
inlining the call; inside `scan`, `cond` and `while` the body is re-traced
through the interpreter.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.extend.core as jex
import jax.numpy as jnp
import numpy as np

from attribution._jaxpr_interpreter import (
    Rule,
    bind,
    count_equations,
    evaluate,
    interpreted,
    sub_jaxprs,
)
from attribution.classifier import Classifier, NotApplicableError

RULES = ("guided", "deconvnet")

# Call-like primitives whose single sub-jaxpr takes exactly the equation's inputs.
_INLINE = ("jit", "pjit", "closed_call", "core_call", "remat", "remat2", "checkpoint",
           "custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr")


@jax.custom_vjp
def _guided_relu(x: jax.Array) -> jax.Array:
    return jnp.maximum(x, 0)


def _guided_fwd(x):
    return jnp.maximum(x, 0), x


def _guided_bwd(x, g):
    # Springenberg et al. 2015: the forward mask AND a rectified gradient.
    return (jnp.where((x > 0) & (g > 0), g, jnp.zeros_like(g)),)


_guided_relu.defvjp(_guided_fwd, _guided_bwd)


@jax.custom_vjp
def _deconv_relu(x: jax.Array) -> jax.Array:
    return jnp.maximum(x, 0)


def _deconv_fwd(x):
    return jnp.maximum(x, 0), None


def _deconv_bwd(_, g):
    # Zeiler & Fergus 2014: rectify the incoming gradient, ignore the forward pass.
    return (jnp.maximum(g, 0),)


_deconv_relu.defvjp(_deconv_fwd, _deconv_bwd)

_RELUS = {"guided": _guided_relu, "deconvnet": _deconv_relu}


def _is_zero_literal(atom: Any) -> bool:
    return isinstance(atom, jex.Literal) and np.ndim(atom.val) == 0 and atom.val == 0


def _relu_operand(eqn: jex.JaxprEqn) -> int | None:
    """Index of the ReLU's input among `eqn.invars`, or None if `eqn` is no ReLU."""
    name = eqn.primitive.name
    if name == "custom_jvp_call" and eqn.params.get("name") == "relu" and len(eqn.invars) == 1:
        operand = 0
    elif name == "max" and len(eqn.invars) == 2 and _is_zero_literal(eqn.invars[1]):
        operand = 0
    else:
        return None
    aval = eqn.invars[operand].aval
    if not jnp.issubdtype(aval.dtype, jnp.floating) or aval.shape != eqn.outvars[0].aval.shape:
        return None
    return operand


def count_relus(jaxpr: jex.Jaxpr) -> int:
    """Number of ReLU equations in `jaxpr`, nested calls included."""
    return count_equations(jaxpr, lambda eqn: _relu_operand(eqn) is not None)


# Activations by the name of their jitted function (jax.nn / flax), or their primitive.
_ACTIVATION_CALLS = frozenset({
    "gelu", "silu", "swish", "sigmoid", "elu", "celu", "selu", "softplus", "leaky_relu",
    "relu6", "hard_tanh", "hard_sigmoid", "hard_silu", "hard_swish", "mish", "log_sigmoid",
    "sparse_plus", "squareplus", "tanh"})
_ACTIVATION_PRIMITIVES = {"tanh": "tanh", "logistic": "sigmoid", "erf": "erf"}


def _calling_activation(eqn: jex.JaxprEqn) -> str | None:
    """The activation function (e.g. gelu, whose jit is inlined) that traced `eqn`, if any."""
    traceback = getattr(eqn.source_info, "traceback", None)
    for frame in getattr(traceback, "frames", ()) or ():
        if frame.function_name in _ACTIVATION_CALLS:
            return frame.function_name
    return None


def other_activations(jaxpr: jex.Jaxpr) -> list[str]:
    """Names of the non-ReLU activations in `jaxpr` (nested calls included), sorted.

    Their backward pass stays the plain gradient under the ReLU rules.
    """
    found: set[str] = set()

    def visit(jaxpr):
        for eqn in jaxpr.eqns:
            name = eqn.params.get("name")
            if _relu_operand(eqn) is not None:
                continue
            if isinstance(name, str) and name in _ACTIVATION_CALLS:
                found.add(name)
            elif eqn.primitive.name in _ACTIVATION_PRIMITIVES:
                found.add(_calling_activation(eqn) or _ACTIVATION_PRIMITIVES[eqn.primitive.name])
            else:
                for sub, _ in sub_jaxprs(eqn.params):
                    visit(sub)

    visit(jaxpr)
    return sorted(found)


def _retrace(closed: jex.ClosedJaxpr, relu: Callable) -> jex.ClosedJaxpr:
    avals = [jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype, weak_type=v.aval.weak_type)
             for v in closed.jaxpr.invars]
    return jax.make_jaxpr(
        lambda *a: evaluate(closed.jaxpr, closed.consts, a, _rule(relu)))(*avals)


def _rewrite_params(eqn: jex.JaxprEqn, relu: Callable) -> dict[str, Any]:
    params = dict(eqn.params)
    for key, value in eqn.params.items():
        values = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, jex.Jaxpr) for v in values):
            raise ValueError(f"Cannot rewrite ReLUs inside a {eqn.primitive.name!r} equation.")
        new = [_retrace(v, relu) if isinstance(v, jex.ClosedJaxpr) else v for v in values]
        params[key] = tuple(new) if isinstance(value, tuple) else new[0]
    return params


def _rule(relu: Callable) -> Rule:
    """The interpreter rule that swaps each ReLU for `relu`, wherever it is nested."""

    def rule(eqn: jex.JaxprEqn, invals: list[Any]) -> list[Any] | None:
        operand = _relu_operand(eqn)
        if operand is not None:
            return [relu(invals[operand])]
        subs = list(sub_jaxprs(eqn.params))
        if not any(count_relus(sub) for sub, _ in subs):
            return None
        if eqn.primitive.name in _INLINE and len(subs) == 1:
            sub, sub_consts = subs[0]
            return evaluate(sub, sub_consts, invals[len(invals) - len(sub.invars):], rule)
        return bind(eqn, _rewrite_params(eqn, relu), invals)

    return rule


def replace_relu_backward(fn: Callable[..., Any], rule: str,
                          example_args: Sequence[Any]) -> Callable[..., Any]:
    """Returns `fn` with the backward pass of each of its ReLUs replaced by `rule`.

    Args:
      fn: a pure function of arrays (pytrees allowed), e.g. `apply_fn(variables, images)`.
      rule: "guided" (pass the gradient where the ReLU input and the incoming gradient are
        both positive) or "deconvnet" (pass the rectified incoming gradient).
      example_args: arguments (arrays or `jax.ShapeDtypeStruct`s) to check that `fn`
        contains a ReLU at all. The returned function re-traces `fn` for the shapes it is
        called with.

    Returns:
      A function with `fn`'s signature and forward values; jittable.

    Raises:
      ValueError: for an unknown rule, or when `fn` contains no ReLU.
    """
    if rule not in RULES:
        raise ValueError(f"Unknown ReLU rule {rule!r}; valid rules: {', '.join(RULES)}.")
    jaxpr = jax.make_jaxpr(fn)(*example_args).jaxpr
    if not count_relus(jaxpr):
        raise NotApplicableError(
            f"The {rule} rule needs ReLUs, and the model has none (looked for jax.nn.relu / "
            "flax.linen.relu and jnp.maximum(x, 0)).")
    others = other_activations(jaxpr)
    if others:
        warnings.warn(
            f"The {rule} rule rewrites only the model's ReLUs; its other activations "
            f"({', '.join(others)}) pass the plain gradient.", stacklevel=3)
    return interpreted(fn, _rule(_RELUS[rule]))


def rule_gradient(classifier: Classifier, rule: str) -> Callable[..., jax.Array]:
    """The target logit's input gradient with every ReLU's backward pass replaced by `rule`.

    Returns:
      `fn(variables, images [N, H, W, C], targets int [N]) -> float32 [N, H, W, C]`.

    Raises:
      ValueError: for an unknown rule, or a model without ReLUs.
    """
    images = jax.ShapeDtypeStruct((1, *classifier.input_shape), jnp.float32)
    apply = replace_relu_backward(classifier.apply_fn, rule, (classifier.variables, images))

    def gradient(variables, images, targets):
        def total(x):
            logits = apply(variables, x)
            # Examples are independent, so the gradient of the sum is per example.
            return jnp.sum(jnp.take_along_axis(logits, targets[:, None], axis=1))

        return jax.grad(total)(images).astype(jnp.float32)

    return gradient
