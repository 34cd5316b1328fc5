"""MNIST classifiers written the ordinary Flax way: plain `nn.relu`, no hooks.

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


MODELS: dict[str, type[nn.Module]] = {"mlp": MLP, "cnn": CNN, "cnn_gap": CNNGAP}


def create_model(name: str, **kwargs) -> nn.Module:
    """Builds the model registered under `name` ("mlp", "cnn" or "cnn_gap")."""
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; valid models: {', '.join(sorted(MODELS))}.")
    return MODELS[name](**kwargs)
