"""Command line: python -m trainer --config configs/cnn.py --workdir runs/cnn [--config.x=y]."""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from trainer import train

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Folder for checkpoints and TensorBoard event files.")
config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, optionally with a variant: configs/cnn.py:tiny.",
    lock_config=True,
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    # Orbax reports every checkpoint step at INFO; keep the console to our progress lines.
    logging.get_absl_handler().addFilter(lambda record: "orbax" not in record.pathname)
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        train.check_workdir(FLAGS.workdir)
    except ValueError as e:
        sys.exit(f"Error: {e}")
    logging.info("Config:\n%s", FLAGS.config)
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)


def run():
    app.run(main)


if __name__ == "__main__":
    run()
