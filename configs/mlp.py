"""Multilayer perceptron (256-128) on MNIST; `configs/mlp.py:tiny` runs in seconds."""

from configs import default


def get_config(arg: str | None = None):
    config = default.get_config(arg)
    with config.unlocked():
        config.model = "mlp"
    return config
