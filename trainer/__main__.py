"""Command line: python -m trainer --config configs/cnn.py --workdir runs/cnn [--config.x=y]."""

import logging as pylogging
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Folder for checkpoints and TensorBoard event files.")
config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, optionally with a variant: configs/cnn.py:tiny.",
    lock_config=True,
)
flags.DEFINE_string("coordinator_address", "",
                    "Multi-process runs: host:port of process 0's coordinator service.")
flags.DEFINE_integer("num_processes", 1, "Multi-process runs: how many processes take part.")
flags.DEFINE_integer("process_id", 0, "Multi-process runs: this process's rank, from 0.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    # Orbax reports every checkpoint step at INFO, and JAX its search for TPU / GPU backends
    # ("Unable to initialize backend 'tpu'"): shown with --verbosity=1, like the config.
    if logging.get_verbosity() < logging.DEBUG:
        logging.get_absl_handler().addFilter(lambda record: "orbax" not in record.pathname)
        for name in ("jax._src.xla_bridge", "jax._src.compilation_cache"):
            pylogging.getLogger(name).setLevel(pylogging.WARNING)
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    logging.debug("Config:\n%s", FLAGS.config)
    # Imported once the flags and the config are read: a misspelled override is reported in
    # a fraction of a second instead of after JAX and the attribution engine load (2 s).
    from trainer import garbage_collection, parallel, train

    garbage_collection.settle()
    try:
        # Before anything touches a device: under jax.distributed, jax.devices() spans processes.
        parallel.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    except ValueError as e:
        sys.exit(f"Error: {e}")
    try:
        train.train_and_evaluate(FLAGS.config, FLAGS.workdir,
                                 compilation_cache=FLAGS.config.compilation_cache)
    except (train.SetupError, train.NonFiniteError) as e:
        sys.exit(f"Error: {' '.join(str(e).split())}")
    except KeyboardInterrupt as e:
        logging.info("%s", e if isinstance(e, train.TrainingInterrupted) else
                     "Interrupted before training started: rerun the same command to go on.")
        _exit_now(130)  # The shell's code for a SIGINT.


def _exit_now(code: int) -> None:
    """Ends the process without the interpreter's teardown.

    Everything is written and closed by then (train_and_evaluate's `finally`); tearing down
    a process whose XLA work a Ctrl-C cut short can crash (a segmentation fault in 1 of
    about 10 interrupted compiles), which would hide the exit code and the message.
    """
    logging.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def parse_flags(argv: list[str]) -> list[str]:
    """Parses flags; a bad flag or config override ends the program with one line, no traceback."""
    try:
        return FLAGS(argv)
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError) as e:
        # ml_collections wraps a KeyError in an AttributeError; show the innermost message.
        while e.args and isinstance(e.args[0], BaseException):
            e = e.args[0]
        message = str(e.args[0]) if e.args else str(e)
        sys.exit(f"Error: bad flag or config override: {' '.join(message.split())}")


def run():
    app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
