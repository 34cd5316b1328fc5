"""Per-epoch checkpoints of the TrainState in WORKDIR/checkpoints, with orbax."""

import os

import orbax.checkpoint as ocp
from absl import logging
from flax.training import train_state

FOLDER = "checkpoints"


def saved_epochs(workdir: str) -> list[int]:
    """The epochs saved in `workdir`, oldest first; reads only (no folder is created)."""
    folder = os.path.join(workdir, FOLDER)
    if not os.path.isdir(folder):
        return []
    return sorted(int(name) for name in os.listdir(folder) if name.isdigit())


class EpochCheckpoints:
    """Saves the state after each finished epoch; restores the last intact one on resume."""

    def __init__(self, workdir: str, max_to_keep: int = 2):
        self.folder = os.path.abspath(os.path.join(workdir, FOLDER))
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(self.folder, options=options)

    def latest_epoch(self) -> int:
        """The last finished epoch saved, or 0 when there is none."""
        return self._manager.latest_step() or 0

    def restore(self, epoch: int, like: train_state.TrainState) -> train_state.TrainState:
        """The state saved after `epoch`, with `like`'s structure (apply_fn, tx)."""
        return self._manager.restore(epoch, args=ocp.args.StandardRestore(like))

    def restore_latest_intact(self, like: train_state.TrainState, delete_damaged: bool = True
                              ) -> tuple[int, train_state.TrainState | None]:
        """(epoch, state) of the newest checkpoint that restores; (0, None) when none does.

        A damaged checkpoint (a run killed while the disk was full, a truncated file) is
        reported and the next older one tried; with `delete_damaged` (a run about to train)
        it is deleted, so that its epoch can be saved again.
        """
        for epoch in sorted(self._manager.all_steps(), reverse=True):
            try:
                return epoch, self.restore(epoch, like)
            except Exception as e:  # noqa: BLE001  (orbax / TensorStore raise many kinds)
                logging.warning("The checkpoint of epoch %d in %s is damaged (%s: %s); "
                                "trying the previous one.", epoch, self.folder,
                                type(e).__name__, " ".join(str(e).split())[:200])
                if delete_damaged:
                    self._manager.delete(epoch)
        return 0, None

    def save(self, epoch: int, state: train_state.TrainState) -> None:
        """Saves and waits, so an epoch counts as finished only once it is on disk."""
        self._manager.save(epoch, args=ocp.args.StandardSave(state))
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
