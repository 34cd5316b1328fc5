"""Layer-wise relevance propagation on a function nobody wrote for it.

LRP (Bach et al. 2015) sends the target logit backwards as relevance, redistributing it at
every layer by a rule (`attribution.lrp_rules`). As with the ReLU rules, we do not edit models:
the model is traced once (`jax.make_jaxpr`) and its jaxpr evaluated by an interpreter that
keeps every forward value and gives each equation that depends on the input a backward pass
carrying relevance instead of the gradient:

- a dense or conv equation with weights (`dot_general`, `conv_general_dilated`), together with
  the elementwise affine equations after it (its bias, a BatchNorm in evaluation mode: folded
  in, as zennit's canonizers do), is one layer and gets its composite's rule;
- parameter-free equations that mix values (sums and average pooling, residual adds) get the
  `Norm` rule, R_in = a * J^T (R / stabilize(y));
- ReLUs and elementwise scalings by constants pass relevance through unchanged (zennit's
  `Pass`); reshapes, transposes, broadcasts, slices, padding and max pooling use their
  gradient (max pooling: winner takes all);
- anything else that depends on the input (another activation, a product of two input-dependent
  values) raises `NotApplicableError` naming the primitive.

Each rewritten equation returns its forward value exactly; only its derivative changes, via
`stop_gradient(y) + g(a) - stop_gradient(g(a))` with a surrogate g whose derivative is the
rule. The relevance at the input is then the gradient of `sum(R_out * logits)` with
`R_out` = the target logit on the target class (Captum's and zennit's convention).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.extend.core as jex
import jax.numpy as jnp
import numpy as np

from attribution._jaxpr_interpreter import bind, sub_jaxpr
from attribution.classifier import NotApplicableError
from attribution.lrp_rules import Composite, Rule, Term
from attribution.relu_backward import _ACTIVATION_CALLS, _calling_activation

NORM_EPSILON = 1e-6

_CALLS = ("jit", "pjit", "closed_call", "core_call", "remat", "remat2", "checkpoint",
          "custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr")
_LAYERS = {"dot_general": "dense", "conv_general_dilated": "conv"}
# Elementwise, affine with constants: folded into a preceding layer, else relevance passes.
_AFFINE_ELEMENTWISE = frozenset({"add", "sub", "mul", "div", "neg", "convert_element_type"})
# Linear in their input-dependent operands and mixing values: the Norm rule.
_NORM = frozenset({"reduce_sum", "reduce_window_sum", "cumsum", "add", "add_any", "sub"})
# Their gradient redistributes relevance as it should (moves, copies back, or picks a winner).
_GRADIENT = frozenset({
    "reshape", "transpose", "broadcast_in_dim", "squeeze", "expand_dims", "slice",
    "concatenate", "pad", "rev", "copy", "copy_p", "dynamic_slice", "gather", "select_n",
    "reduce_window_max", "reduce_max", "reduce_precision"})


@dataclasses.dataclass(frozen=True)
class _Dep:
    """A value that depends on the input."""

    value: Any


def stabilize(x: jax.Array, eps: float) -> jax.Array:
    """`x + eps * sign(x)`, with sign(0) = +1 (zennit's `stabilize`)."""
    return x + eps * jnp.where(x >= 0, 1.0, -1.0).astype(x.dtype)


def _divide(numerator: jax.Array, denominator: jax.Array) -> jax.Array:
    safe = jnp.where(denominator == 0, 1.0, denominator)
    return jnp.where(denominator == 0, 0.0, numerator / safe)


def _with_derivative_of(value: jax.Array, surrogate: jax.Array) -> jax.Array:
    """`value` forward, `surrogate`'s derivative backward."""
    sg = jax.lax.stop_gradient
    return sg(value) + (surrogate - sg(surrogate))


@dataclasses.dataclass
class _State:
    composite: Composite
    low: Any
    high: Any
    layers_seen: int = 0


def _unsupported(eqn: jex.JaxprEqn, why: str) -> NotApplicableError:
    activation = _calling_activation(eqn)
    where = f" (inside {activation})" if activation else ""
    return NotApplicableError(
        f"LRP has no rule for the model's {eqn.primitive.name!r} equation{where}: {why}. It "
        "handles dense and conv layers, BatchNorm, average and max pooling, sums, residual "
        "adds, ReLU, reshapes and flattening.")


def _is_relu(eqn: jex.JaxprEqn, dependent: list[int]) -> bool:
    name = eqn.primitive.name
    if name in ("custom_jvp_call", "jit", "pjit") and eqn.params.get("name") == "relu":
        return True
    literal = eqn.invars[1] if len(eqn.invars) == 2 else None
    return (name == "max" and dependent == [0] and isinstance(literal, jex.Literal)
            and np.ndim(literal.val) == 0 and literal.val == 0)


def _values(invals: list[Any]) -> list[Any]:
    return [v.value if isinstance(v, _Dep) else v for v in invals]


class _Evaluator:
    def __init__(self, state: _State):
        self.state = state

    def run(self, jaxpr: jex.Jaxpr, consts: Sequence[Any], args: Sequence[Any]) -> list[Any]:
        env: dict[jex.Var, Any] = {}
        uses: dict[jex.Var, int] = {}
        dependent_vars = {v for v, a in zip(jaxpr.invars, args, strict=True)
                          if isinstance(a, _Dep)}
        for eqn in jaxpr.eqns:
            for v in eqn.invars:
                if isinstance(v, jex.Var):
                    uses[v] = uses.get(v, 0) + 1
            if any(isinstance(v, jex.Var) and v in dependent_vars for v in eqn.invars):
                dependent_vars.update(eqn.outvars)
        for v in jaxpr.outvars:
            if isinstance(v, jex.Var):
                uses[v] = uses.get(v, 0) + 1

        def read(atom):
            return atom.val if isinstance(atom, jex.Literal) else env[atom]

        env.update(zip(jaxpr.constvars, consts, strict=True))
        env.update(zip(jaxpr.invars, args, strict=True))
        eqns = list(jaxpr.eqns)
        # A layer is computed where its folded affine chain ends: the chain's constant
        # operands (a reshaped bias) may be computed between the layer and the chain.
        pending: dict[int, tuple] = {}
        folded: set[int] = set()
        for index, eqn in enumerate(eqns):
            if index in pending:
                layer, invals, dep, chain = pending.pop(index)
                env[eqn.outvars[0]] = self._layer(layer, invals, dep, chain, read)
                continue
            if index in folded:
                continue
            invals = [read(v) for v in eqn.invars]
            dependent = [k for k, v in enumerate(invals) if isinstance(v, _Dep)]
            if eqn.primitive.name in _LAYERS and len(dependent) == 1:
                chain = self._affine_chain(eqns, index, uses, dependent_vars)
                if chain:
                    positions = [i for i, _ in chain]
                    pending[positions[-1]] = (eqn, invals, dependent[0], [e for _, e in chain])
                    folded.update(positions[:-1])
                else:
                    env[eqn.outvars[0]] = self._layer(eqn, invals, dependent[0], [], read)
                continue
            outs = self._step(eqn, invals, dependent)
            env.update(zip(eqn.outvars, outs, strict=True))
        return [read(v) for v in jaxpr.outvars]

    # One equation ----------------------------------------------------------------------------

    def _step(self, eqn: jex.JaxprEqn, invals: list[Any], dependent: list[int]) -> list[Any]:
        name = eqn.primitive.name
        if not dependent:
            return bind(eqn, eqn.params, invals)
        if name in _CALLS and not _is_relu(eqn, dependent):
            if eqn.params.get("name") in _ACTIVATION_CALLS:
                raise _unsupported(eqn, f"{eqn.params['name']} is not a ReLU")
            sub = sub_jaxpr(eqn)
            if sub is None:
                raise _unsupported(eqn, "its body could not be found")
            jaxpr, consts = sub
            return self.run(jaxpr, consts, invals[len(invals) - len(jaxpr.invars):])
        values = _values(invals)
        outputs = bind(eqn, eqn.params, values)
        if _is_relu(eqn, dependent) or (name in _AFFINE_ELEMENTWISE and len(dependent) == 1
                                        and self._elementwise(eqn, dependent[0])):
            a = values[dependent[0]]  # Relevance passes: an identity derivative.
            return [_Dep(_with_derivative_of(outputs[0], a))]
        if name in _NORM:
            return [_Dep(self._norm(eqn, values, dependent, outputs[0]))]
        if name in _GRADIENT and not (name == "select_n" and 0 in dependent):
            return [_Dep(o) for o in outputs]
        raise _unsupported(eqn, "it is neither a layer, a sum, a ReLU nor a reshape")

    @staticmethod
    def _elementwise(eqn: jex.JaxprEqn, operand: int) -> bool:
        if eqn.primitive.name == "div" and operand != 0:
            return False  # 1 / a is not affine.
        return eqn.outvars[0].aval.shape == eqn.invars[operand].aval.shape

    @staticmethod
    def _norm(eqn: jex.JaxprEqn, values: list[Any], dependent: list[int], y: jax.Array
              ) -> jax.Array:
        """R_in = a * J^T (R / stabilize(y)) for each input-dependent operand a."""
        sg = jax.lax.stop_gradient
        scaled = [sg(v) * v if k in dependent else sg(v) for k, v in enumerate(values)]
        surrogate = bind(eqn, eqn.params, scaled)[0] * sg(_divide(1.0, stabilize(y,
                                                                                  NORM_EPSILON)))
        return _with_derivative_of(y, surrogate)

    # Layers ----------------------------------------------------------------------------------

    @staticmethod
    def _affine_chain(eqns: list[jex.JaxprEqn], start: int, uses: dict, dependent_vars: set
                      ) -> list[tuple[int, jex.JaxprEqn]]:
        """(position, equation) of the elementwise affine equations with constants that take
        the layer's output, one after the other, each value used only by the next."""
        chain: list[tuple[int, jex.JaxprEqn]] = []
        current = eqns[start].outvars[0]
        for index in range(start + 1, len(eqns)):
            eqn = eqns[index]
            if current not in eqn.invars:
                continue
            if uses.get(current, 0) != 1:
                break
            operand = eqn.invars.index(current)
            others = [v for k, v in enumerate(eqn.invars) if k != operand]
            if (eqn.primitive.name not in _AFFINE_ELEMENTWISE
                    or any(isinstance(v, jex.Var) and v in dependent_vars for v in others)
                    or eqn.outvars[0].aval.shape != current.aval.shape
                    or (eqn.primitive.name == "div" and operand != 0)):
                break
            chain.append((index, eqn))
            current = eqn.outvars[0]
        return chain

    def _layer(self, eqn: jex.JaxprEqn, invals: list[Any], dep: int,
               chain: list[jex.JaxprEqn], read: Callable) -> _Dep:
        """A weighted layer and its folded affine chain, with its rule's backward pass."""
        weight_index = 1 - dep
        values = _values(invals)
        a, weights = values[dep], values[weight_index]
        if isinstance(weights, _Dep):
            raise _unsupported(eqn, "both its operands depend on the input")
        rule = self.state.composite.rule_for(_LAYERS[eqn.primitive.name],
                                             self.state.layers_seen == 0)
        self.state.layers_seen += 1

        def base(inputs, w):
            args = list(values)
            args[dep], args[weight_index] = inputs, w
            return bind(eqn, eqn.params, args)[0]

        linear = base(a, weights)
        forward = _chain_values(chain, linear, eqn.outvars[0], read)
        offset = jax.lax.stop_gradient(
            _chain_values(chain, jnp.zeros_like(linear), eqn.outvars[0], read))
        # Without a scaling in the chain (no BatchNorm), each modified layer is one
        # conv / matmul with a modified kernel.
        scale = None
        if any(link.primitive.name in ("mul", "div", "neg") for link in chain):
            scale = jax.lax.stop_gradient(
                _chain_values(chain, jnp.ones_like(linear), eqn.outvars[0], read) - offset)
        surrogate = _rule_surrogate(rule, base, jax.lax.stop_gradient(a), a, weights, scale,
                                    offset, jax.lax.stop_gradient(forward), self.state)
        return _Dep(_with_derivative_of(forward, surrogate))


def _chain_values(chain: list[jex.JaxprEqn], z: jax.Array, first_var: jex.Var,
                  read: Callable) -> jax.Array:
    """The affine chain applied to `z` in place of the layer's output."""
    current = first_var
    for link in chain:
        args = []
        for v in link.invars:
            if v is current:
                args.append(z)
            else:
                value = read(v)
                args.append(value.value if isinstance(value, _Dep) else value)
        z = bind(link, link.params, args)[0]
        current = link.outvars[0]
    return z


def _bound(value: Any, a: jax.Array) -> jax.Array:
    """A z-box bound (a scalar, or one per input element of an example) broadcast to `a`."""
    bound = np.asarray(value, np.float32)
    if bound.size == 1:
        return jnp.full(a.shape, bound.reshape(()), a.dtype)
    if bound.size != int(np.prod(a.shape[1:])):
        raise ValueError(f"The z-box bounds have {bound.size} values; the first layer's input "
                         f"has {int(np.prod(a.shape[1:]))} per example.")
    return jnp.broadcast_to(jnp.asarray(bound.reshape(a.shape[1:]), a.dtype), a.shape)


def _rule_surrogate(rule: Rule, base: Callable, a_const: jax.Array, a: jax.Array,
                    weights: jax.Array, scale: jax.Array, offset: jax.Array,
                    output: jax.Array, state: _State) -> jax.Array:
    """sum_k c_k W_k (sg(a_k) * a) * sg(m_k / stabilize(d_k)): its derivative is the rule."""
    sg = jax.lax.stop_gradient
    w_pos, w_neg = jnp.maximum(weights, 0), jnp.minimum(weights, 0)

    def unit_weighted(inputs, modifier: str):
        kernel = {"identity": weights, "positive": w_pos, "negative": w_neg,
                  "gamma_positive": weights + rule.gamma * w_pos,
                  "gamma_negative": weights + rule.gamma * w_neg,
                  "ones": jnp.ones_like(weights), "square": jnp.square(weights)}[modifier]
        return base(inputs, kernel)

    def scaled_weighted(inputs, modifier: str):
        """The modified weights of s * W (s: the folded chain's per-output scale)."""
        s_pos, s_neg = jnp.maximum(scale, 0), jnp.minimum(scale, 0)

        def plain():
            return scale * base(inputs, weights)

        def positive():  # (s W)^+ = s^+ W^+ + s^- W^-, row by row.
            return s_pos * base(inputs, w_pos) + s_neg * base(inputs, w_neg)

        def negative():
            return s_pos * base(inputs, w_neg) + s_neg * base(inputs, w_pos)

        return {"identity": plain, "positive": positive, "negative": negative,
                "gamma_positive": lambda: plain() + rule.gamma * positive(),
                "gamma_negative": lambda: plain() + rule.gamma * negative(),
                "ones": lambda: base(inputs, jnp.ones_like(weights)),
                "square": lambda: jnp.square(scale) * base(inputs, jnp.square(weights)),
                }[modifier]()

    weighted = unit_weighted if scale is None else scaled_weighted

    def bias(modifier: str):
        return {"identity": lambda: offset, "zero": lambda: jnp.zeros_like(offset),
                "positive": lambda: jnp.maximum(offset, 0),
                "negative": lambda: jnp.minimum(offset, 0),
                "gamma_positive": lambda: offset + rule.gamma * jnp.maximum(offset, 0),
                "gamma_negative": lambda: offset + rule.gamma * jnp.minimum(offset, 0),
                "square": lambda: jnp.square(offset)}[modifier]()

    def modified_inputs(term: Term):
        return {"identity": lambda: a_const, "positive": lambda: jnp.maximum(a_const, 0),
                "negative": lambda: jnp.minimum(a_const, 0),
                "ones": lambda: jnp.ones_like(a_const),
                "low": lambda: _bound(state.low, a),
                "high": lambda: _bound(state.high, a),
                }[term.inputs]()

    inputs = [modified_inputs(t) for t in rule.terms]
    outputs = [sg(weighted(x, t.weights) + bias(t.bias)) for x, t in zip(inputs, rule.terms,
                                                                         strict=True)]
    denominators = {}
    for out, term in zip(outputs, rule.terms, strict=True):
        denominators[term.group] = denominators.get(term.group, 0.0) + term.sign * out
    masks = {None: 1.0, "positive_output": output > 0, "negative_output": output < 0}
    total = 0.0
    for x, term in zip(inputs, rule.terms, strict=True):
        share = sg(_divide(jnp.asarray(masks[term.mask], a.dtype),
                           stabilize(denominators[term.group], rule.epsilon)))
        total = total + term.coefficient * weighted(x * a, term.weights) * share
    return total


def relevance_apply(fn: Callable[[Any, jax.Array], Any], composite: Composite,
                    low: Any = 0.0, high: Any = 1.0) -> Callable[[Any, jax.Array], Any]:
    """`fn(variables, x)` with the same forward values and LRP as its derivative in `x`.

    Args:
        fn: `(variables, images [N, H, W, C]) -> logits`, pure.
        composite: Which rule each layer gets.
        low, high: The z-box bounds of the first layer's input (scalars or broadcastable).

    Returns:
        `g(variables, images)`; the vector-Jacobian product of `g` with a relevance `R` on the
        logits is the relevance at the input.

    Raises:
        NotApplicableError: At the first call, naming an equation no rule covers.
    """

    def apply(variables: Any, images: jax.Array) -> Any:
        closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(variables, images)
        args = [*jax.tree.leaves(variables), _Dep(images)]
        outs = _Evaluator(_State(composite, low, high)).run(closed.jaxpr, closed.consts, args)
        values = [o.value if isinstance(o, _Dep) else o for o in outs]
        return jax.tree.unflatten(jax.tree.structure(out_shape), values)

    return apply
