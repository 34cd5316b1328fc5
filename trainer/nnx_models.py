"""An NNX classifier in the shape of Flax's current MNIST example.

nnx.Conv, nnx.BatchNorm, nnx.Dropout and nnx.Linear, built eagerly with an `nnx.Rngs`, and a
`__call__(x, rngs=None)` as in the example; nothing here exists for the attribution engine.
"""

from functools import partial

from flax import nnx

from attribution.model_kinds.base import fast_compiling_draws


class CNN(nnx.Module):
    """conv32-BN-ReLU-avgpool, conv64-BN-ReLU-avgpool, dense256-ReLU (Dropout), dense10."""

    def __init__(self, *, rngs: nnx.Rngs, features: tuple[int, int] = (32, 64),
                 dense: int = 256, num_classes: int = 10, dropout: float = 0.1):
        self.conv1 = nnx.Conv(1, features[0], kernel_size=(3, 3), rngs=rngs)
        self.batch_norm1 = nnx.BatchNorm(features[0], momentum=0.9, rngs=rngs)
        self.dropout1 = nnx.Dropout(rate=dropout, rngs=rngs)
        self.conv2 = nnx.Conv(features[0], features[1], kernel_size=(3, 3), rngs=rngs)
        self.batch_norm2 = nnx.BatchNorm(features[1], momentum=0.9, rngs=rngs)
        self.avg_pool = partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
        self.linear1 = nnx.Linear(7 * 7 * features[1], dense, rngs=rngs)
        self.dropout2 = nnx.Dropout(rate=dropout, rngs=rngs)
        self.linear2 = nnx.Linear(dense, num_classes, rngs=rngs)

    def __call__(self, x, rngs: nnx.Rngs | None = None):
        x = self.avg_pool(nnx.relu(self.batch_norm1(self.conv1(x))))
        x = self.avg_pool(nnx.relu(self.batch_norm2(self.conv2(x))))
        x = self.dropout1(x.reshape(x.shape[0], -1), rngs=rngs)
        x = nnx.relu(self.linear1(x))
        return self.linear2(self.dropout2(x, rngs=rngs))


def cnn(seed: int = 0, **kwargs) -> CNN:
    with fast_compiling_draws():  # Each eager draw compiles; this form compiles faster.
        return CNN(rngs=nnx.Rngs(seed), **kwargs)


MODELS = {"cnn_nnx": cnn}
