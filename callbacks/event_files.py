"""What a run's TensorBoard event files already hold, read back the way TensorBoard reads them.

A run resumed after a kill starts a new event file that hides the steps after its resume step
(`TensorBoardWriter(purge_step=...)`); what an earlier attempt wrote at the resume step itself
stays. A callback that redoes a firing at that step asks here which of its tags are there; the
verdict command reads the verdict texts back.
"""

from __future__ import annotations

import os

from tensorboard.compat.proto import event_pb2


def _event_files(logdir: str) -> list[str]:
    try:
        names = os.listdir(logdir)
    except FileNotFoundError:
        return []
    # Names start with the creation time: sorted by name, in the order the runs wrote them.
    return sorted(os.path.join(logdir, n) for n in names if "tfevents" in n)


def use_native_checksums() -> None:
    """Makes TensorBoard's reader check record checksums with the `crc32c` package.

    Without TensorFlow, TensorBoard reads event files through its `tensorflow_stub`, which
    computes every record's CRC-32C in pure Python: 2.1 s for a 26 MB run with images, 0.11 s
    with the package (a dependency: tensorboardX writes with it). The same checksum, still
    verified: a damaged record still raises. With TensorFlow installed its native reader is
    used and the stub is unused. Idempotent.
    """
    import crc32c

    try:  # A private module of TensorBoard's: if it moves, reading stays correct, only slower.
        from tensorboard.compat.tensorflow_stub import pywrap_tensorflow
    except ImportError:
        return
    if hasattr(pywrap_tensorflow, "crc32c"):
        pywrap_tensorflow.crc32c = crc32c.crc32c


def _visible_events(logdir: str) -> list[event_pb2.Event]:
    """Every summary event TensorBoard shows, in file order (later runs' purges applied)."""
    # Imported here: it would import TensorFlow where installed, and only readers need it.
    from tensorboard.backend.event_processing import event_file_loader

    use_native_checksums()
    events = []
    for path in _event_files(logdir):
        for event in event_file_loader.EventFileLoader(path).Load():
            if (event.HasField("session_log")
                    and event.session_log.status == event_pb2.SessionLog.START):
                events = [e for e in events if e.step < event.step]
            elif event.HasField("summary"):
                events.append(event)
    return events


def texts(logdir: str, tag: str) -> dict[int, str]:
    """Step -> the text written under `tag` (TensorBoard's text plugin), as TensorBoard shows
    it: the last write at a step wins."""
    found = {}
    for event in _visible_events(logdir):
        for value in event.summary.value:
            if value.tag == tag and value.HasField("tensor"):
                found[event.step] = value.tensor.string_val[0].decode("utf-8")
    return found


def tags_at_step(logdir: str, step: int) -> set[str]:
    """The summary tags written at `step` in `logdir`'s event files that TensorBoard shows.

    A file that starts with a `SessionLog.START` at step P hides the events earlier files
    hold at steps >= P, as TensorBoard does. A record cut short by a kill is skipped.
    """
    return {value.tag for event in _visible_events(logdir) if event.step == step
            for value in event.summary.value}
