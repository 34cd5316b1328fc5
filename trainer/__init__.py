"""The training loop, its command line, and loading a trained run back (`load_run`)."""


def load_run(workdir: str):
    """A run the trainer wrote: model, variables, config, probes (see `trainer.run`)."""
    from trainer.run import load_run as _load_run  # Lazy: `python -m trainer` needs none of it.

    return _load_run(workdir)
