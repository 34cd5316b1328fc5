"""Re-initializing a model's layers with their own initializers, for the randomization test.

The random weights come from the model kind's initializers (a linen model's `init`; each NNX
layer's class defaults, see `attribution.model_kinds.nnx_module`), jitted, with a key derived
from `seed` (`fold_in(key(seed), REINIT_STREAM)`; drawn in threefry's non-partitionable form,
`attribution.model_kinds.base.fast_compiling_draws`), from which the randomized layers'
parameters are taken: they depend on the seed only (reproducible across epochs and runs) and
are drawn once. Only trainable parameters are ever re-initialized: BatchNorm's running
statistics and RNG state keep their trained values. The
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

A layer whose parameters are all constant-initialized (BatchNorm's scale and bias, under the
default policy) would not change when "re-initialized", so it is not a layer of the test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from attribution.model_kinds import ModelKind, intercept, kind_of

# Folded into the seed's key so that re-initialized weights never equal a training init.
REINIT_STREAM = 0x5A17


def _variables(kind: ModelKind, variables: Any) -> Any:
    return kind.default_variables() if variables is None else kind.variables_of(variables)


def model_variables(model: Any, variables: Any) -> Any:
    """`variables` as `model`'s kind holds them; None: the model's own (NNX, Keras)."""
    return _variables(_kind(model), variables)


def _kind(model: Any) -> ModelKind:
    if hasattr(model, "apply_fn"):  # A Classifier carries its kind (none if hand-made).
        return model.kind or kind_of(model.apply_fn)
    return kind_of(model)


def layer_order(variables: Any, model: Any = None,
                input_shape: tuple[int, int, int] | None = None) -> list[str]:
    """The parameterized layers, from the input to the logits.

    With `model` and `input_shape`, the order is the order in which the model first calls
    each layer (found with interception hooks under `jax.eval_shape`, no compute). Without
    them it is the key order of a linen `variables["params"]`: Flax's `init` inserts
    submodules in creation order, which for a compact model is call order, but JAX tree
    operations (an optimizer update) return dicts with sorted keys, so prefer passing the
    model.

    Args:
        variables: The model's variables (linen `{"params": {layer: ...}, ...}`, NNX state).
        model: Optional: the model (linen or NNX module, `ModelKind` or `Classifier`).
        input_shape: Per-example image shape `(H, W, C)`; required with `model`.

    Returns:
        Layer names such as `["Conv_0", "Conv_1", "Dense_0", "Dense_1"]` or
        `["conv1", "batch_norm1", "linear1"]`.

    Raises:
        ValueError: If the variables hold no parameters, or `model` comes without
            `input_shape`.
    """
    if model is None:
        params = variables.get("params") if isinstance(variables, Mapping) else None
        if not isinstance(params, Mapping) or not params:
            raise ValueError(
                "variables must be a dict with a non-empty 'params' collection; got "
                f"{type(variables).__name__} with keys "
                f"{sorted(variables) if isinstance(variables, Mapping) else 'none'}.")
        return list(params)
    if input_shape is None:
        raise ValueError("layer_order needs input_shape with a model.")
    kind = _kind(model)
    variables = _variables(kind, variables)
    owners = [o for o in kind.parameter_layers(variables) if o is not None]
    layers = list(dict.fromkeys(owners))
    if not layers:
        raise ValueError(f"The {kind.name} has no trainable parameters to re-initialize.")
    called: list[str] = []

    def record(call_next, layer):
        for name in layers:
            if name not in called and (layer.name == name or layer.name.startswith(name + "/")):
                called.append(name)
        return call_next()

    images = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    with intercept(record):
        # A fresh function each time: eval_shape caches traces, which would skip the hook.
        jax.eval_shape(lambda v, x: kind.apply(v, x), variables, images)
    # Parameters never touched by a call (none in ordinary models) go last, in their order.
    return called + [name for name in layers if name not in called]


def random_variables(model: Any, variables: Any, seed: int,
                     input_shape: tuple[int, int, int]) -> Any:
    """The model's variables with every trainable parameter freshly initialized.

    Args:
        model: A linen or NNX module (or its `ModelKind` / `Classifier`).
        variables: The trained variables (their structure is kept; statistics and RNG state
            keep their values).
        seed: Integer seed; the same seed gives the same weights.
        input_shape: Per-example image shape `(H, W, C)`.

    Returns:
        Variables with the structure of `variables`.

    Raises:
        ValueError: If the model's layers cannot be re-initialized (a plain function), or
            its initializers do not produce the parameters of `variables`.
    """
    key = jax.random.fold_in(jax.random.key(seed), REINIT_STREAM)
    kind = _kind(model)
    return kind.fresh_variables(_variables(kind, variables), key, input_shape)


def constant_leaves(model: Any, variables: Any, seed: int,
                    input_shape: tuple[int, int, int]) -> list[bool]:
    """Which leaves of `variables` the initializers set to constants, e.g. zero biases.

    Returns:
        One bool per leaf of `variables` (`jax.tree.leaves` order): True where the seeds
        `seed` and `seed + 1` initialize it identically (leaves that are not parameters
        are never re-drawn, so they count as constant too).
    """
    first = jax.tree.leaves(random_variables(model, variables, seed, input_shape))
    second = jax.tree.leaves(random_variables(model, variables, seed + 1, input_shape))
    return [bool(np.array_equal(np.asarray(_data(a)), np.asarray(_data(b))))
            for a, b in zip(first, second, strict=True)]


def _data(leaf: Any) -> Any:
    if jax.dtypes.issubdtype(getattr(leaf, "dtype", np.float32), jax.dtypes.prng_key):
        return jax.random.key_data(leaf)
    return leaf


def leaf_layers(model: Any, variables: Any, seed: int, input_shape: tuple[int, int, int],
                keep_constant: bool = True) -> list[str | None]:
    """Per leaf of `variables`, the layer whose re-initialization replaces it, or None.

    None for leaves that are not trainable parameters, and with `keep_constant` for
    constant-initialized ones (they keep their trained values).
    """
    kind = _kind(model)
    owners = kind.parameter_layers(_variables(kind, variables))
    if not keep_constant:
        return owners
    constant = constant_leaves(model, variables, seed, input_shape)
    return [None if c else o for o, c in zip(owners, constant, strict=True)]


def randomize_layers(model: Any, variables: Any, layers: Sequence[str], seed: int,
                     input_shape: tuple[int, int, int], *, keep_constant: bool = True) -> Any:
    """`variables` with the named layers re-initialized by their own initializers.

    Args:
        model: A linen or NNX module (or its `ModelKind` / `Classifier`).
        variables: The trained variables.
        layers: Layer names (see `layer_order`).
        seed: Integer seed of the re-initialization.
        input_shape: Per-example image shape `(H, W, C)`.
        keep_constant: Keep the trained values of constant-initialized params (see the
            module docstring).

    Returns:
        A new variables pytree; other layers, statistics and RNG state are those of
        `variables`.

    Raises:
        ValueError: If the model cannot be re-initialized or a layer name is unknown.
    """
    kind = _kind(model)
    variables = _variables(kind, variables)
    known = list(dict.fromkeys(o for o in kind.parameter_layers(variables) if o is not None))
    unknown = [name for name in layers if name not in known]
    if unknown:
        raise ValueError(f"Unknown layer(s) {', '.join(map(repr, unknown))}; valid layers: "
                         f"{', '.join(known)}.")
    fresh = jax.tree.leaves(random_variables(kind, variables, seed, input_shape))
    owners = leaf_layers(kind, variables, seed, input_shape, keep_constant)
    trained, treedef = jax.tree.flatten(variables)
    return jax.tree.unflatten(treedef, [r if o in layers else t for o, r, t in
                                        zip(owners, fresh, trained, strict=True)])
