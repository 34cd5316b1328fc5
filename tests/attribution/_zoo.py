"""A zoo of models users bring, each written the way its framework's docs write it.

- `NnxCNN`: Flax's current MNIST example (nnx.Conv, nnx.BatchNorm, nnx.Dropout, nnx.Linear,
  an `rngs` argument); `LinenBnCNN` computes the same function with linen modules and a
  required `train` argument, and `linen_variables_from_nnx` copies the weights across.
- `NnxResNet`: a small residual net on 32x32x3 colour images (BatchNorm, residual adds,
  blocks in an `nnx.List`).
- `TupleOutput`: returns `(logits, embedding)`.
- `GeluReluNet`: GELU convs and one ReLU dense layer.
"""

from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from attribution.model_kinds.base import fast_compiling_draws

# Few steps, samples and patches for the path, noise and perturbation methods: what the zoo
# tests check (a model kind runs every method; NNX maps equal linen maps) holds at any setting.
FAST_OPTIONS = {
    "integrated_gradients": {"steps": 4}, "smoothgrad": {"num_samples": 2},
    "occlusion": {"window": 7}, "vargrad": {"num_samples": 2}, "gradient_shap": {"num_samples": 2},
    "blur_ig": {"steps": 4}, "guided_ig": {"steps": 4}, "deeplift_shap": {"baselines": 0.5},
    "rise": {"num_samples": 4}, "kernel_shap": {"num_samples": 8, "patch": 14},
    "lime": {"num_samples": 8, "patch": 14}, "feature_ablation": {"patch": 14},
    "xrai": {"steps": 4, "segment_sizes": (7, 14)},
}


class NnxCNN(nnx.Module):
    """Flax's MNIST example CNN (the shape of its current tutorial)."""

    def __init__(self, *, rngs: nnx.Rngs, dtype=jnp.float32):
        self.conv1 = nnx.Conv(1, 8, kernel_size=(3, 3), rngs=rngs, param_dtype=dtype)
        self.batch_norm1 = nnx.BatchNorm(8, rngs=rngs, param_dtype=dtype)
        self.dropout1 = nnx.Dropout(rate=0.025, rngs=rngs)
        self.conv2 = nnx.Conv(8, 16, kernel_size=(3, 3), rngs=rngs, param_dtype=dtype)
        self.batch_norm2 = nnx.BatchNorm(16, rngs=rngs, param_dtype=dtype)
        self.avg_pool = partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
        self.linear1 = nnx.Linear(7 * 7 * 16, 32, rngs=rngs, param_dtype=dtype)
        self.dropout2 = nnx.Dropout(rate=0.025, rngs=rngs)
        self.linear2 = nnx.Linear(32, 10, rngs=rngs, param_dtype=dtype)

    def __call__(self, x, rngs: nnx.Rngs | None = None):
        x = self.avg_pool(nnx.relu(self.batch_norm1(self.dropout1(self.conv1(x), rngs=rngs))))
        x = self.avg_pool(nnx.relu(self.batch_norm2(self.conv2(x))))
        x = x.reshape(x.shape[0], -1)
        x = nnx.relu(self.dropout2(self.linear1(x), rngs=rngs))
        return self.linear2(x)


class LinenBnCNN(nn.Module):
    """The same network in linen, ImageNet-example style: a required `train` argument."""

    @nn.compact
    def __call__(self, x, train: bool):
        bn = partial(nn.BatchNorm, use_running_average=not train, momentum=0.99, epsilon=1e-5)
        x = nn.Dropout(0.025, deterministic=not train)(nn.Conv(8, (3, 3), name="conv1")(x))
        x = nn.avg_pool(nn.relu(bn(name="batch_norm1")(x)), (2, 2), strides=(2, 2))
        x = nn.relu(bn(name="batch_norm2")(nn.Conv(16, (3, 3), name="conv2")(x)))
        x = nn.avg_pool(x, (2, 2), strides=(2, 2)).reshape(x.shape[0] // 1, -1)
        x = nn.Dropout(0.025, deterministic=not train)(nn.Dense(32, name="linear1")(x))
        return nn.Dense(10, name="linear2")(nn.relu(x))


def randomize_statistics(model: NnxCNN, seed: int = 0) -> None:
    """Gives the NNX model's BatchNorms non-trivial running statistics and affine params."""
    rng = np.random.default_rng(seed)
    for bn in (model.batch_norm1, model.batch_norm2):
        n = bn.mean[...].shape
        bn.mean[...] = jnp.asarray(rng.normal(0, 0.3, n), bn.mean[...].dtype)
        bn.var[...] = jnp.asarray(rng.uniform(0.5, 2.0, n), bn.var[...].dtype)
        bn.scale[...] = jnp.asarray(rng.uniform(0.5, 1.5, n), bn.scale[...].dtype)
        bn.bias[...] = jnp.asarray(rng.normal(0, 0.2, n), bn.bias[...].dtype)


def linen_variables_from_nnx(model: NnxCNN) -> dict:
    """The NNX model's weights and statistics as `LinenBnCNN` variables."""
    params, stats = {}, {}
    for name in ("conv1", "conv2", "linear1", "linear2"):
        layer = getattr(model, name)
        params[name] = {"kernel": layer.kernel[...], "bias": layer.bias[...]}
    for name in ("batch_norm1", "batch_norm2"):
        bn = getattr(model, name)
        params[name] = {"scale": bn.scale[...], "bias": bn.bias[...]}
        stats[name] = {"mean": bn.mean[...], "var": bn.var[...]}
    return {"params": params, "batch_stats": stats}


class ResidualBlock(nnx.Module):
    def __init__(self, channels: int, *, rngs: nnx.Rngs, dtype=jnp.float32):
        self.conv = nnx.Conv(channels, channels, kernel_size=(3, 3), rngs=rngs,
                             param_dtype=dtype)
        self.norm = nnx.BatchNorm(channels, rngs=rngs, param_dtype=dtype)

    def __call__(self, x):
        return nnx.relu(x + self.norm(self.conv(x)))


class NnxResNet(nnx.Module):
    """A stem conv, two residual blocks, global average pooling and a linear head."""

    def __init__(self, *, rngs: nnx.Rngs, dtype=jnp.float32):
        self.stem = nnx.Conv(3, 8, kernel_size=(3, 3), strides=(2, 2), rngs=rngs,
                             param_dtype=dtype)
        self.blocks = nnx.List([ResidualBlock(8, rngs=rngs, dtype=dtype) for _ in range(2)])
        self.head = nnx.Linear(8, 10, rngs=rngs, param_dtype=dtype)

    def __call__(self, x):
        x = nnx.relu(self.stem(x))
        for block in self.blocks:
            x = block(x)
        return self.head(jnp.mean(x, axis=(1, 2)))


class TupleOutput(nn.Module):
    """Returns (logits, embedding), as models with an auxiliary output do."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(4, (3, 3))(x))
        embedding = nn.relu(nn.Dense(16)(x.reshape(x.shape[0], -1)))
        return nn.Dense(10)(embedding), embedding


class GeluReluNet(nn.Module):
    """GELU convolutions, one ReLU dense layer."""

    @nn.compact
    def __call__(self, x):
        x = nn.gelu(nn.Conv(4, (3, 3))(x))
        x = nn.gelu(nn.Conv(4, (3, 3))(x))
        x = nn.relu(nn.Dense(16)(x.reshape(x.shape[0], -1)))
        return nn.Dense(10)(x)


def linen_init(model: nn.Module, input_shape, seed: int = 0, **kwargs) -> dict:
    with fast_compiling_draws():
        return jax.jit(partial(model.init, **kwargs))(jax.random.key(seed),
                                                      jnp.zeros((1, *input_shape), jnp.float32))


def build_nnx(cls: type[nnx.Module], seed: int, **kwargs) -> nnx.Module:
    """`cls(rngs=nnx.Rngs(seed), **kwargs)`, as users write it, with draws that compile
    faster (each eager draw compiles its own program: about 0.8 s per layer otherwise)."""
    with fast_compiling_draws():
        return cls(rngs=nnx.Rngs(seed), **kwargs)
