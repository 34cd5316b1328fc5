"""MNIST classifiers written the ordinary Flax way: plain `nn.relu`, no hooks.

Linen models here; the NNX one lives in `trainer/nnx_models.py`. `create_model` builds
either kind by name.

The attribution methods must work on models like these without edits, so
nothing here exists for their sake. Average pooling rather than max pooling:
MNIST's flat background makes exact ties inside max-pool windows, and which
tied pixel gets the gradient then depends on the convolution algorithm.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp


class MLP(nn.Module):
    """Multilayer perceptron: flatten, dense-ReLU layers, a dense logit layer."""

    hidden: Sequence[int] = (256, 128)
    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = x.reshape((x.shape[0], -1))
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.num_classes)(x)


class CNN(nn.Module):
    """Conv-ReLU-pool blocks, then a dense-ReLU layer and dense logits."""

    features: Sequence[int] = (32, 64)
    dense: int = 128
    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        for width in self.features:
            x = nn.relu(nn.Conv(width, (3, 3))(x))
            x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(self.dense)(x))
        return nn.Dense(self.num_classes)(x)


class CNNGAP(nn.Module):
    """Conv-ReLU blocks, global average pooling, one dense layer (the CAM architecture).

    Every block but the last pools, so the last feature maps form a 7x7 grid
    for CAM and Grad-CAM (as a ResNet's do on ImageNet).
    """

    features: Sequence[int] = (32, 64, 128)
    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        for i, width in enumerate(self.features):
            x = nn.relu(nn.Conv(width, (3, 3))(x))
            if i < len(self.features) - 1:
                x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes)(x)


class CNNBN(nn.Module):
    """The CNN with BatchNorm after each conv and Dropout, behind a `train` argument.

    In the style of the Flax ImageNet example: `train=True` normalizes with the batch's
    statistics (and updates the running averages in `batch_stats`) and drops units;
    `train=False` uses the running averages and keeps every unit.
    """

    features: Sequence[int] = (32, 64)
    dense: int = 128
    num_classes: int = 10
    dropout: float = 0.1

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        for width in self.features:
            x = nn.Conv(width, (3, 3), use_bias=False)(x)
            x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
            x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        x = nn.relu(nn.Dense(self.dense)(x))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_classes)(x)


MODELS: dict[str, type[nn.Module]] = {"mlp": MLP, "cnn": CNN, "cnn_gap": CNNGAP, "cnn_bn": CNNBN}


def model_names() -> list[str]:
    """Every model `create_model` builds, linen and NNX."""
    from trainer import nnx_models

    return sorted([*MODELS, *nnx_models.MODELS])


def create_model(name: str, seed: int = 0, **kwargs):
    """Builds the model registered under `name` (see `model_names()`).

    Args:
      name: a linen model ("mlp", "cnn", "cnn_gap", "cnn_bn") or an NNX one ("cnn_nnx").
      seed: an NNX model's initial weights come from it (a linen model draws them at `init`).
      **kwargs: the model's own fields.
    """
    from trainer import nnx_models

    if name in MODELS:
        return MODELS[name](**kwargs)
    if name in nnx_models.MODELS:
        return nnx_models.MODELS[name](seed=seed, **kwargs)
    raise ValueError(f"Unknown model {name!r}; valid models: {', '.join(model_names())}.")
