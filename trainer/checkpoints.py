"""Per-epoch checkpoints of the TrainState in WORKDIR/checkpoints, with orbax."""

import os

import orbax.checkpoint as ocp
from flax.training import train_state


class EpochCheckpoints:
    """Saves the state after each finished epoch; restores the last one on resume."""

    def __init__(self, workdir: str, max_to_keep: int = 2):
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(
            os.path.abspath(os.path.join(workdir, "checkpoints")), options=options
        )

    def latest_epoch(self) -> int:
        """The last finished epoch saved, or 0 when there is none."""
        return self._manager.latest_step() or 0

    def restore(self, epoch: int, like: train_state.TrainState) -> train_state.TrainState:
        """The state saved after `epoch`, with `like`'s structure (apply_fn, tx)."""
        return self._manager.restore(epoch, args=ocp.args.StandardRestore(like))

    def save(self, epoch: int, state: train_state.TrainState) -> None:
        """Saves and waits, so an epoch counts as finished only once it is on disk."""
        self._manager.save(epoch, args=ocp.args.StandardSave(state))
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
