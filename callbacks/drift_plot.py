"""The drift figure: each method's similarity to the previous firing against the step."""

from collections.abc import Mapping, Sequence

import numpy as np

from attribution.sanity.drift import settled_step
from callbacks.titles import METHOD_TITLES


def drift_plot(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], threshold: float,
               title: str = "") -> np.ndarray:
    """One line per method, similarity to the previous firing against the firing's step.

    The step axis is logarithmic (linear around 0, so the untrained model's step 0 fits);
    a dashed line marks `threshold`, and a star each method's settled step (the first firing
    after which the similarity stays at or above it).

    Args:
      curves: method -> (steps, to_previous values), one value per firing after the first.
      threshold: the settled threshold.
      title: figure title.

    Returns:
      uint8 RGB `[height, width, 3]`.
    """
    # Lazy, and the Agg canvas only: no pyplot, no GUI backend, safe off the main thread.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    # Fixed margins: a constrained layout would cost half of the figure's time, every firing.
    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    fig.subplots_adjust(left=0.1, right=0.78, bottom=0.14, top=0.91)
    canvas = FigureCanvasAgg(fig)
    ax = fig.subplots()
    for name, (steps, values) in curves.items():
        (line,) = ax.plot(steps, values, marker="o", markersize=3,
                          label=METHOD_TITLES.get(name, name))
        settled = settled_step(steps, values, threshold)
        if settled is not None:
            ax.plot([settled], [values[list(steps).index(settled)]], marker="*", markersize=11,
                    color=line.get_color())
    ax.axhline(threshold, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xscale("symlog", linthresh=1.0)
    # Plain numbers (1, 10, 100) instead of the log scale's powers of ten, which matplotlib
    # typesets as math text at every draw: a fifth of the figure's time.
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
    ax.set_xlim(left=0)
    ax.set_ylim(-0.05, 1.05)
    ax.text(0.01, 0.02, f"\u2605 settled: stays \u2265 {threshold:g} from there on",
            transform=ax.transAxes, fontsize=7, color="dimgrey")
    ax.set_xlabel("step (log)")
    ax.set_ylabel("similarity to previous firing")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    if title:
        ax.set_title(title, fontsize=9, y=1.0)  # A fixed place: no search for one at each draw
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
