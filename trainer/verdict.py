"""The verdict of a finished (or running) workdir, as its SanityCallback logged it.

    python -m trainer.verdict --workdir runs/cnn            # the last firing's table
    python -m trainer.verdict --workdir runs/cnn --step 0   # another firing's
    python -m trainer.verdict --workdir runs/cnn --all      # every firing's, in step order

prints the markdown table (`attribution.verdict`: one row per method, one cell per metric
family, pass / fail / n.a.) exactly as TensorBoard's Text tab shows it under `sanity/verdict`.
"""

import os
import sys

from callbacks import event_files
from callbacks.tags import VERDICT_TAG


def main(workdir: str, step: int | None = None, every: bool = False) -> str:
    """The verdict text(s) of `workdir`.

    Raises:
        FileNotFoundError: If `workdir` does not exist.
        ValueError: If it holds no verdict, or none at `step` (the message lists the steps).
    """
    if not os.path.isdir(workdir):
        raise FileNotFoundError(f"No workdir {workdir!r}.")
    found = event_files.texts(workdir, VERDICT_TAG)
    if not found:
        raise ValueError(f"{workdir!r} holds no verdict: was the sanity callback on "
                         "(config.sanity.enabled) and has it fired yet?")
    if every:
        return "\n\n".join(found[s] for s in sorted(found))
    if step is None:
        step = max(found)
    if step not in found:
        raise ValueError(f"No verdict at step {step}; the run has verdicts at steps "
                         f"{', '.join(map(str, sorted(found)))}.")
    return found[step]


def _main(argv: list[str]) -> None:
    from absl import app

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        step = None if _FLAGS.step < 0 else _FLAGS.step
        print(main(_FLAGS.workdir, step, _FLAGS.all))
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"Error: {' '.join(str(e).split())}")


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("workdir", None, "Workdir of a run.")
    flags.DEFINE_integer("step", -1, "The firing's global step; -1: the last one.")
    flags.DEFINE_bool("all", False, "Print every firing's verdict, in step order.")
    flags.mark_flags_as_required(["workdir"])
    _FLAGS = flags.FLAGS
    app.run(_main)
