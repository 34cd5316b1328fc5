"""Flax NNX CNN in the shape of Flax's MNIST example (nnx.Conv, nnx.BatchNorm, nnx.Dropout,
nnx.Linear); `configs/cnn_nnx.py:tiny` runs in seconds."""

from configs import default


def get_config(arg: str | None = None):
    config = default.get_config(arg)
    with config.unlocked():
        config.model = "cnn_nnx"
    return config
