"""CNN with a global-average-pool head (CAM applies); `configs/cnn_gap.py:tiny` runs in seconds."""

from configs import default


def get_config(arg: str | None = None):
    config = default.get_config(arg)
    with config.unlocked():
        config.model = "cnn_gap"
        # A GAP head learns slower than a dense head; a larger step makes up for it.
        config.optimizer.learning_rate = 3e-3
        config.attribution.methods = default.DEFAULT_METHODS + ",cam"
    return config
