"""A model as the training loop sees it: pure init and apply, whatever its kind.

`apply(params, batch_stats, images, train, key) -> (logits, batch_stats)`: in training mode
BatchNorm uses the batch's statistics and returns updated running averages, and Dropout
draws from `key`; in evaluation mode both are off and `batch_stats` comes back unchanged.
For a linen model `batch_stats` is its "batch_stats" collection (`{}` without BatchNorm);
for an NNX model it is the module's `nnx.BatchStat` state.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

from attribution.model_kinds.base import fast_compiling_draws

Apply = Callable[[Any, Any, jax.Array, bool, jax.Array], tuple[jax.Array, Any]]


@dataclasses.dataclass(frozen=True)
class Trainable:
    """Initial variables and the pure apply function of one model."""

    params: Any
    batch_stats: Any
    apply: Apply


def trainable(model: Any, rng: jax.Array, input_shape: tuple[int, ...]) -> Trainable:
    """The `Trainable` of a linen or NNX model; `rng` seeds a linen model's init."""
    if isinstance(model, nnx.Module):
        return _nnx(model)
    if isinstance(model, nn.Module):
        return _linen(model, rng, input_shape)
    raise ValueError(f"Cannot train a {type(model).__name__}: the trainer takes flax.linen "
                     "and flax.nnx modules.")


def _linen(model: nn.Module, rng: jax.Array, input_shape: tuple[int, ...]) -> Trainable:
    has_train = "train" in list(inspect.signature(type(model).__call__).parameters)[1:]
    mode = (lambda train: {"train": train}) if has_train else (lambda train: {})
    # Jitted: unjitted, every parameter shape compiles its own random draw (seconds on CPU).
    with fast_compiling_draws():
        variables = jax.jit(lambda r: model.init(r, jnp.zeros((1, *input_shape), jnp.float32),
                                                 **mode(False)))(rng)

    def apply(params, batch_stats, images, train, key):
        variables = {"params": params, **({"batch_stats": batch_stats} if batch_stats else {})}
        if train and batch_stats:
            logits, updated = model.apply(variables, images, rngs={"dropout": key},
                                          mutable=["batch_stats"], **mode(True))
            return logits, updated["batch_stats"]
        return model.apply(variables, images, rngs={"dropout": key}, **mode(train)), batch_stats

    return Trainable(variables["params"], variables.get("batch_stats", {}), apply)


def _nnx(model: nnx.Module) -> Trainable:
    # RNG streams stay out of the trained state: Dropout is reseeded from the step's key.
    graphdef, params, batch_stats, rng_state = nnx.split(model, nnx.Param, nnx.BatchStat, ...)

    def apply(params, batch_stats, images, train, key):
        # Fresh Variable objects in this trace: NNX refuses to mutate (BatchNorm's update,
        # reseeding) a Variable created under another trace level.
        states = jax.tree.map(lambda x: x, (params, batch_stats, rng_state))
        module = nnx.merge(graphdef, *states)
        if train:
            module.train()
            nnx.reseed(module, dropout=key)
        else:
            module.eval()
        logits = module(images)
        return logits, nnx.state(module, nnx.BatchStat)

    return Trainable(params, batch_stats, apply)
