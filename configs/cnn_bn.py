"""Linen CNN with BatchNorm and Dropout behind `train: bool` (the Flax ImageNet example's
style); `configs/cnn_bn.py:tiny` runs in seconds."""

from configs import default


def get_config(arg: str | None = None):
    config = default.get_config(arg)
    with config.unlocked():
        config.model = "cnn_bn"
    return config
