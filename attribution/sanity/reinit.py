"""Re-initializing a model's layers with their own initializers, for the randomization test.

The random weights come from the model's `init`, jitted, with a key derived from `seed`
(`fold_in(key(seed), REINIT_STREAM)`), from which the randomized layers' subtrees are taken:
they depend on the seed only (reproducible across epochs and runs) and are drawn once. The
key is not `key(seed)` itself because training is usually seeded with `PRNGKey(seed)` (same
bits): with one integer for both, the "random" layers would be the model's own initial
weights, nearly the trained ones after a little training, and every method would pass.

By default (`keep_constant=True`) parameters whose initializer is not random (Flax's zero
biases; found as the leaves that two different keys initialize identically) keep their
trained values. A zero bias is no randomization, and it leaves every random ReLU unit with a
pre-activation of exactly 0 wherever its receptive field is black (most of an MNIST digit),
where ReLU's gradient is 0: all-random maps then share the digit's silhouette with the
trained maps, a similarity that comes from the data rather than the weights. On our trained
CNN, gradient's Spearman-abs similarity after full randomization is 0.07 with trained biases
and 0.57 with zero biases. `keep_constant=False` re-initializes every parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def layer_order(variables: Any, model: nn.Module | None = None,
                input_shape: tuple[int, int, int] | None = None) -> list[str]:
    """The parameterized top-level layers, from the input to the logits.

    With `model` and `input_shape`, the order is the order in which the model first calls
    each top-level submodule that holds parameters (found with `nn.intercept_methods` under
    `jax.eval_shape`, no compute). Without them it is the key order of `variables["params"]`:
    Flax's `init` inserts submodules in creation order, which for a compact model is call
    order, but JAX tree operations (an optimizer update) return dicts with sorted keys, so
    prefer passing the model.

    Args:
        variables: The model's variables `{"params": {layer: ...}, ...}`.
        model: Optional: the `flax.linen.Module`.
        input_shape: Per-example image shape `(H, W, C)`; required with `model`.

    Returns:
        Layer names such as `["Conv_0", "Conv_1", "Dense_0", "Dense_1"]`.

    Raises:
        ValueError: If `variables` has no "params", or `model` is given without `input_shape`.
    """
    params = variables.get("params") if isinstance(variables, Mapping) else None
    if not isinstance(params, Mapping) or not params:
        raise ValueError("variables must be a dict with a non-empty 'params' collection; got "
                         f"{type(variables).__name__} with keys "
                         f"{sorted(variables) if isinstance(variables, Mapping) else 'none'}.")
    if model is None:
        return list(params)
    if input_shape is None:
        raise ValueError("layer_order needs input_shape with a model.")
    called: list[str] = []

    def record(next_fun, args, kwargs, context):
        path = context.module.path
        if path and path[0] in params and path[0] not in called:
            called.append(path[0])
        return next_fun(*args, **kwargs)

    images = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    with nn.intercept_methods(record):
        # A fresh function each time: eval_shape caches traces, which would skip the hook.
        jax.eval_shape(lambda v, x: model.apply(v, x), variables, images)
    # Parameters never touched by a call (none in ordinary models) go last, in dict order.
    return called + [name for name in params if name not in called]


# Jitted (unjitted, each parameter shape compiles its own random draw: seconds on CPU), with
# the module static: linen modules hash by their fields, so every seed reuses one compile.
_init = jax.jit(lambda model, key, images: model.init(key, images), static_argnums=0)

# Folded into the seed's key so that re-initialized weights never equal a training init.
REINIT_STREAM = 0x5A17


def random_variables(model: nn.Module, variables: Any, seed: int,
                     input_shape: tuple[int, int, int]) -> Any:
    """The whole model freshly initialized, with a key derived from `seed` (see module doc).

    Args:
        model: A `flax.linen.Module` (it must have `init`).
        variables: The trained variables; only their "params" structure is checked against
            the fresh ones.
        seed: Integer seed; the same seed gives the same weights.
        input_shape: Per-example image shape `(H, W, C)`.

    Returns:
        Variables with the structure of `variables`, every parameter re-initialized.

    Raises:
        ValueError: If `model` is not a linen Module, or its params do not match `variables`.
    """
    if not isinstance(model, nn.Module):
        raise ValueError("Parameter randomization needs a flax.linen.Module (it calls its "
                         f"`init`); got {type(model).__name__}.")
    key = jax.random.fold_in(jax.random.key(seed), REINIT_STREAM)
    fresh = _init(model, key, jnp.zeros((1, *input_shape), jnp.float32))
    want = jax.tree.structure(variables["params"])
    if jax.tree.structure(fresh["params"]) != want:
        raise ValueError("The model's init does not produce the params of `variables`; "
                         f"init gives {sorted(fresh['params'])}, variables have "
                         f"{sorted(variables['params'])}.")
    return {**variables, "params": fresh["params"]}


def constant_leaves(model: nn.Module, variables: Any, seed: int,
                    input_shape: tuple[int, int, int]) -> Any:
    """Which params the model's initializers set to constants, e.g. Flax's zero biases.

    Args:
        model, variables, seed, input_shape: As for `random_variables`.

    Returns:
        A pytree shaped like `variables["params"]` of Python bools: True where the keys
        `seed` and `seed + 1` initialize the parameter identically.
    """
    first = random_variables(model, variables, seed, input_shape)["params"]
    second = random_variables(model, variables, seed + 1, input_shape)["params"]
    return jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), first, second)


def randomize_layers(model: nn.Module, variables: Any, layers: Sequence[str], seed: int,
                     input_shape: tuple[int, int, int], *, keep_constant: bool = True) -> Any:
    """`variables` with the named top-level layers re-initialized by their own initializers.

    Args:
        model: A `flax.linen.Module`.
        variables: The trained variables `{"params": ...}`.
        layers: Top-level layer names (see `layer_order`).
        seed: Integer seed for `model.init`.
        input_shape: Per-example image shape `(H, W, C)`.
        keep_constant: Keep the trained values of constant-initialized params (see the
            module docstring).

    Returns:
        A new variables pytree; the other layers and collections are those of `variables`.

    Raises:
        ValueError: If `model` is not a linen Module or a layer name is unknown.
    """
    fresh = random_variables(model, variables, seed, input_shape)["params"]
    params = dict(variables["params"])
    unknown = [name for name in layers if name not in params]
    if unknown:
        raise ValueError(f"Unknown layer(s) {', '.join(map(repr, unknown))}; valid layers: "
                         f"{', '.join(params)}.")
    keep = (constant_leaves(model, variables, seed, input_shape) if keep_constant
            else jax.tree.map(lambda _: False, fresh))
    for name in layers:
        params[name] = jax.tree.map(lambda k, r, t: t if k else r, keep[name], fresh[name],
                                    params[name])
    return {**variables, "params": params}
