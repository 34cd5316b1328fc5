"""CNN (conv32-conv64-dense128) on MNIST; `configs/cnn.py:tiny` runs in seconds."""

from configs import default


def get_config(arg: str | None = None):
    config = default.get_config(arg)
    with config.unlocked():
        config.model = "cnn"
    return config
