"""Pure, jitted training and evaluation steps over a flax TrainState."""

import functools

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from clu import metrics
from flax.training import train_state


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


def create_train_state(model: nn.Module, rng: jax.Array, input_shape: tuple[int, ...],
                       tx: optax.GradientTransformation) -> train_state.TrainState:
    """Initializes parameters for one example of `input_shape` (H, W, C)."""
    # Jitted: unjitted, every parameter shape compiles its own random draw (seconds on CPU).
    params = jax.jit(model.init)(rng, jnp.zeros((1, *input_shape), jnp.float32))["params"]
    return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)


def _loss_and_logits(params, apply_fn, images, labels):
    logits = apply_fn({"params": params}, images)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, logits


@functools.partial(jax.jit, donate_argnums=0)
def train_step(state: train_state.TrainState, images: jax.Array, labels: jax.Array):
    """One optimizer step on a batch; returns the new state and the batch's metrics."""
    grad_fn = jax.value_and_grad(_loss_and_logits, has_aux=True)
    (loss, logits), grads = grad_fn(state.params, state.apply_fn, images, labels)
    state = state.apply_gradients(grads=grads)
    return state, Metrics.single_from_model_output(loss=loss, logits=logits, labels=labels)


@jax.jit
def eval_step(state: train_state.TrainState, images: jax.Array, labels: jax.Array) -> Metrics:
    """Metrics of the current parameters on a batch."""
    loss, logits = _loss_and_logits(state.params, state.apply_fn, images, labels)
    return Metrics.single_from_model_output(loss=loss, logits=logits, labels=labels)
