"""The attribution history of a run: its drift table, and its overview as an animated GIF.

    python -m trainer.history --workdir runs/cnn

prints, for every firing (its step and epoch), each method's similarity to the previous
firing's maps, and the step at which each method settled; and writes the overview grid of
every firing, in step order, as WORKDIR/history/overview.gif (the colour scales as the run
showed them). The numbers are those the run logged as `drift/<method>/to_previous`.
"""

import os
import sys
from collections.abc import Sequence

import numpy as np
from PIL import Image

from attribution import render
from attribution.sanity.drift import DEFAULT_THRESHOLD, settled_step
from callbacks import grids
from callbacks.history import History, history_dir, load_history


def drift_table(history: History, threshold: float | None = None) -> str:
    """A text table: one row per firing, one column per method (to_previous), then the
    step each method settled at (the first firing after which to_previous stays >= threshold).
    """
    if threshold is None:
        threshold = float(history.settings.get("settle_threshold", DEFAULT_THRESHOLD))
    names = history.methods
    widths = [max(8, len(n)) for n in names]
    header = f"{'step':>7} {'epoch':>6}  " + "  ".join(
        f"{n:>{w}}" for n, w in zip(names, widths, strict=True))
    lines = [f"similarity to the previous firing "
             f"({history.settings.get('drift_similarity', 'spearman_abs')}), "
             f"{len(history.steps)} firings", header]
    for k, step in enumerate(history.steps):
        epoch = history.epochs[k]
        cells = [("" if np.isnan(v) else f"{v:.3f}").rjust(w) for v, w in zip(
            (history.drift[n]["to_previous"][k] for n in names), widths, strict=True)]
        lines.append(f"{step:>7} {'' if np.isnan(epoch) else f'{epoch:.2f}':>6}  "
                     + "  ".join(cells))
    settled = [settled_step(history.steps, history.drift[n]["to_previous"], threshold)
               for n in names]
    lines.append(f"{'settled (>= ' + format(threshold, 'g') + ')':>14}  " + "  ".join(
        ("never" if s is None else str(s)).rjust(w) for s, w in zip(settled, widths,
                                                                     strict=True)))
    return "\n".join(lines)


def overview_frames(history: History, scale: str | None = None,
                    percentile: float | None = None) -> list[np.ndarray]:
    """The overview grid (probes x input and each method) of every firing, uint8 RGB."""
    scale = grids.check_scale(scale or history.settings.get("scale", "per_method"))
    percentile = float(percentile or history.settings.get("percentile", 99.0))
    digits = render.digit_to_rgb(history.probes, render.display_range(history.probes))
    clips = {n: np.stack([grids.clip_values(m, history.signed[n], percentile) for m in maps])
             for n, maps in history.maps.items()}
    scales = {n: grids.firing_scales(c, scale) for n, c in clips.items()}
    bars = grids.legend(history.methods, history.signed, scale, percentile)
    frames = []
    for k, step in enumerate(history.steps):
        coloured = {n: grids.colour(history.maps[n][k], history.signed[n], scales[n][k])[0]
                    for n in history.methods}
        rows = grids.row_labels(history.labels, history.predicted[k], history.confidence[k])
        label = grids.column_label(int(step), history.epochs[k])
        frames.append(grids.overview(digits, coloured, rows, bars, input_label=label))
    return frames


def write_gif(frames: Sequence[np.ndarray], path: str, frame_ms: int = 500) -> None:
    """An endlessly looping GIF of `frames` (padded white to the largest), the last held 4x."""
    height = max(f.shape[0] for f in frames)
    width = max(f.shape[1] for f in frames)
    images = []
    for frame in frames:
        canvas = np.full((height, width, 3), 255, np.uint8)
        canvas[:frame.shape[0], :frame.shape[1]] = frame
        images.append(Image.fromarray(canvas))
    durations = [frame_ms] * (len(images) - 1) + [4 * frame_ms]
    temporary = path + ".tmp"
    images[0].save(temporary, format="GIF", save_all=True, append_images=images[1:],
                   duration=durations, loop=0)
    os.replace(temporary, path)


def main(workdir: str, gif: str | None = None, frame_ms: int = 500) -> str:
    """Prints nothing; returns the drift table and writes the GIF (default next to the history)."""
    history = load_history(workdir)
    if not len(history.steps):
        raise ValueError(f"The history in {history_dir(workdir)!r} holds no firings yet.")
    gif = gif or os.path.join(history_dir(workdir), "overview.gif")
    write_gif(overview_frames(history), gif, frame_ms)
    return f"{drift_table(history)}\n\nOverview over training: {gif}"


def _main(argv: list[str]) -> None:
    from absl import app

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        print(main(_FLAGS.workdir, _FLAGS.gif or None, _FLAGS.frame_ms))
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"Error: {' '.join(str(e).split())}")


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("workdir", None, "Workdir of a run (or its history folder).")
    flags.DEFINE_string("gif", "", "Where to write the GIF; empty: WORKDIR/history/overview.gif.")
    flags.DEFINE_integer("frame_ms", 500, "Milliseconds per firing in the GIF.")
    flags.mark_flags_as_required(["workdir"])
    _FLAGS = flags.FLAGS
    app.run(_main)
