"""Evaluate a function's jaxpr equation by equation, letting a rule replace some equations.

ReLU-backward rewriting (`relu_backward`) and canonical conv layouts (`_conv_layout`) both
trace a function once and re-bind every equation as traced, except those their rule
rewrites. The result stays jittable and differentiable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.extend.core as jex

# `rule(eqn, invals)` -> the equation's outputs, or None to bind it as traced.
Rule = Callable[[jex.JaxprEqn, list[Any]], list[Any] | None]


def bind(eqn: jex.JaxprEqn, params: dict[str, Any], invals: Sequence[Any]) -> list[Any]:
    """Binds `eqn`'s primitive to `invals` with `params`; always a list of outputs."""
    with eqn.ctx.manager:
        out = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(params))
    return list(out) if eqn.primitive.multiple_results else [out]


def sub_jaxpr(eqn: jex.JaxprEqn) -> tuple[jex.Jaxpr, Sequence[Any]] | None:
    """The jaxpr a call-like equation (jit, custom_jvp_call, remat, ...) runs, and its consts."""
    for value in eqn.params.values():
        if isinstance(value, jex.ClosedJaxpr):
            return value.jaxpr, value.consts
        if isinstance(value, jex.Jaxpr):
            return value, ()
    return None


def sub_jaxprs(params: dict[str, Any]) -> Iterator[tuple[jex.Jaxpr, Sequence[Any]]]:
    """Every jaxpr an equation's params hold (call bodies, loop bodies, cond branches)."""
    for value in params.values():
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, jex.ClosedJaxpr):
                yield v.jaxpr, v.consts
            elif isinstance(v, jex.Jaxpr):
                yield v, ()


def count_equations(jaxpr: jex.Jaxpr, matches: Callable[[jex.JaxprEqn], bool]) -> int:
    """Equations of `jaxpr` that `matches`, nested ones included (a match is not entered)."""
    return sum(1 if matches(eqn) else sum(count_equations(sub, matches)
                                           for sub, _ in sub_jaxprs(eqn.params))
               for eqn in jaxpr.eqns)


def evaluate(jaxpr: jex.Jaxpr, consts: Sequence[Any], args: Sequence[Any], rule: Rule
             ) -> list[Any]:
    """The outputs of `jaxpr` on `args`, each equation given to `rule` first."""
    env: dict[jex.Var, Any] = {}

    def read(atom):
        return atom.val if isinstance(atom, jex.Literal) else env[atom]

    env.update(zip(jaxpr.constvars, consts, strict=True))
    env.update(zip(jaxpr.invars, args, strict=True))
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        outs = rule(eqn, invals)
        if outs is None:
            outs = bind(eqn, eqn.params, invals)
        env.update(zip(eqn.outvars, outs, strict=True))
    return [read(v) for v in jaxpr.outvars]


def interpreted(fn: Callable[..., Any], rule: Rule) -> Callable[..., Any]:
    """`fn`, re-traced for each call's shapes and evaluated through `rule`.

    Args:
        fn: A pure function of arrays (pytrees allowed).
        rule: See `Rule`.

    Returns:
        A function with `fn`'s signature; jittable and differentiable.
    """

    def rewritten(*args: Any) -> Any:
        closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)
        outs = evaluate(closed.jaxpr, closed.consts, jax.tree.leaves(args), rule)
        return jax.tree.unflatten(jax.tree.structure(out_shape), outs)

    return rewritten
