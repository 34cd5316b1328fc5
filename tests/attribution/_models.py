"""Small analytic models for exact references."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def linear_model(input_shape, num_classes: int, seed: int = 0):
    """logits = flatten(x) @ w + b: the gradient of class k is w[:, k], everywhere."""
    rng = np.random.default_rng(seed)
    size = int(np.prod(input_shape))
    variables = {
        "w": jnp.asarray(rng.standard_normal((size, num_classes)), jnp.float32),
        "b": jnp.asarray(rng.standard_normal(num_classes), jnp.float32),
    }

    def apply_fn(variables, images: jax.Array) -> jax.Array:
        return images.reshape(images.shape[0], -1) @ variables["w"] + variables["b"]

    return apply_fn, variables


def weight_images(variables, input_shape, targets) -> np.ndarray:
    """The weight row of each target class as an image, `[N, H, W, C]`."""
    w = np.asarray(variables["w"])
    return np.stack([w[:, t].reshape(input_shape) for t in np.asarray(targets)])


def random_variables(model, input_shape, seed: int, dtype=jnp.float32):
    """He-scaled random weights and nonzero biases for a Flax model, drawn with numpy.

    Nonzero biases matter: a bias-free ReLU net is positively homogeneous, which hides path
    errors. numpy because XLA on CPU compiles threefry for 4-D kernel shapes slowly (seconds).
    """
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, *input_shape)))

    def draw(path, s):
        if "bias" in jax.tree_util.keystr(path):
            return jnp.asarray(0.1 * rng.standard_normal(s.shape), dtype)
        fan_in = int(np.prod(s.shape[:-1]))
        return jnp.asarray(rng.standard_normal(s.shape) * np.sqrt(2 / fan_in), dtype)

    return jax.tree_util.tree_map_with_path(draw, shapes)


class TinyReluNet(nn.Module):
    """conv3-ReLU, dense8-ReLU, dense logits: small, nonlinear, quick to compile."""

    num_classes: int = 4

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(3, (2, 2))(x))
        x = nn.relu(nn.Dense(8)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.num_classes)(x)
