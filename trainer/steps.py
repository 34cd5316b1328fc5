"""Pure, jitted training and evaluation steps over a flax TrainState, for linen and NNX."""

import functools
from typing import Any

import flax
import jax
import optax
from clu import metrics
from flax.training import train_state

from trainer.trainable import trainable


@flax.struct.dataclass
class Metrics(metrics.Collection):
    """Mean cross-entropy loss and accuracy, merged on device, computed on the host."""

    loss: metrics.Average.from_output("loss")
    accuracy: metrics.Accuracy


OPTIMIZERS = ("adam", "adamw", "sgd")


def make_optimizer(name: str, learning_rate: float, momentum: float = 0.9,
                   weight_decay: float = 0.0) -> optax.GradientTransformation:
    """Builds the optax optimizer `name` (one of OPTIMIZERS)."""
    if name == "adam":
        return optax.adam(learning_rate)
    if name == "adamw":
        return optax.adamw(learning_rate, weight_decay=weight_decay)
    if name == "sgd":
        return optax.sgd(learning_rate, momentum=momentum or None)
    raise ValueError(f"Unknown optimizer {name!r}; valid optimizers: {', '.join(OPTIMIZERS)}.")


class TrainState(train_state.TrainState):
    """The Flax examples' TrainState plus BatchNorm statistics and a Dropout key.

    Attributes:
      batch_stats: running BatchNorm averages (a linen "batch_stats" collection, an NNX
        BatchStat state; empty without BatchNorm). The callbacks read it as a collection.
      dropout_key: raw uint32 key; step `s` drops with `fold_in(dropout_key, s)`.
    """

    batch_stats: Any = None
    dropout_key: jax.Array = None


def create_train_state(model: Any, rng: jax.Array, input_shape: tuple[int, ...],
                       tx: optax.GradientTransformation) -> TrainState:
    """Initializes a linen model for one example of `input_shape` (H, W, C) from `rng`, or
    takes an NNX model's own (already initialized) state."""
    init_rng, dropout_key = jax.random.split(rng)
    model_fns = trainable(model, init_rng, input_shape)
    # What TrainState.create does, with the optimizer's state built in one program (eagerly,
    # each parameter shape compiles its own zeros).
    return TrainState(step=0, apply_fn=model_fns.apply, params=model_fns.params, tx=tx,
                      opt_state=jax.jit(tx.init)(model_fns.params),
                      batch_stats=model_fns.batch_stats, dropout_key=dropout_key)


def _loss(params, state, images, labels, train):
    key = jax.random.fold_in(state.dropout_key, state.step)
    logits, batch_stats = state.apply_fn(params, state.batch_stats, images, train, key)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, (logits, batch_stats)


@functools.partial(jax.jit, donate_argnums=0)
def train_step(state: TrainState, images: jax.Array, labels: jax.Array):
    """One optimizer step on a batch; returns the new state and the batch's metrics."""
    grad_fn = jax.value_and_grad(_loss, has_aux=True)
    (loss, (logits, batch_stats)), grads = grad_fn(state.params, state, images, labels, True)
    state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
    return state, Metrics.single_from_model_output(loss=loss, logits=logits, labels=labels)


@jax.jit
def eval_step(state: TrainState, images: jax.Array, labels: jax.Array) -> Metrics:
    """Metrics of the current parameters (BatchNorm on running averages) on a batch."""
    loss, (logits, _) = _loss(state.params, state, images, labels, False)
    return Metrics.single_from_model_output(loss=loss, logits=logits, labels=labels)
