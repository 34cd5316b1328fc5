"""The sanity figure: each method's similarity to its trained maps as layers are randomized."""

from collections.abc import Mapping, Sequence

import numpy as np

from callbacks.titles import METHOD_TITLES

# Axes and title positions of a constrained layout, by what decides them (panels, stage labels,
# legend entries, a title or none). A sanity callback draws the same layout at every firing,
# and matplotlib's layout engine took half of each figure's time (0.21 of 0.42 s, profiled).
# Two threads drawing a new layout at once store the same positions: no lock needed.
_LAYOUTS: dict[tuple, tuple] = {}


def cumulative_labels(stage_names: Sequence[str]) -> list[str]:
    """Cascading stage labels: the top layer, then "+layer" for each one added."""
    return [f"+{name}" if i else name for i, name in enumerate(stage_names)]


def similarity_plot(scores: Mapping[str, Mapping[str, np.ndarray]], stage_names: Sequence[str],
                    title: str = "") -> np.ndarray:
    """Similarity to the trained model's maps against the layers randomized, as an image.

    The layout of Adebayo et al.'s Figure 2: one panel per similarity, the x axis the cascading
    stages (the top layer first), one line per method.

    Args:
      scores: method -> similarity name -> values `[S]`, one per stage.
      stage_names: `S` labels: the layer re-initialized last at each stage.
      title: figure title.

    Returns:
      uint8 RGB `[height, width, 3]`.
    """
    # Lazy, and the Agg canvas only: no pyplot, no GUI backend, safe off the main thread.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    similarities = list(next(iter(scores.values())))
    layout_key = (tuple(similarities), tuple(stage_names), tuple(scores), bool(title))
    layout = _LAYOUTS.get(layout_key)
    fig = Figure(figsize=(3.2 * len(similarities) + 1.6, 3.4), dpi=100,
                 layout="constrained" if layout is None else None)
    canvas = FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(similarities), sharey=True, squeeze=False)[0]
    x = np.arange(1, len(stage_names) + 1)
    for ax, s in zip(axes, similarities, strict=True):
        for m, by_similarity in scores.items():
            ax.plot(x, by_similarity[s], marker="o", markersize=3, label=METHOD_TITLES.get(m, m))
        ax.axhline(0.0, color="grey", linewidth=0.5)
        ax.set_title(s)
        ax.set_xticks(x, cumulative_labels(stage_names), rotation=45, ha="right", fontsize=7)
        ax.set_ylim(-1.05, 1.05)
        ax.set_xlabel("re-initialized down to")
    axes[0].set_ylabel("similarity to trained maps")
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    suptitle = fig.suptitle(title, fontsize=9) if title else None
    if layout is not None:
        positions, suptitle_position = layout
        for ax, position in zip(axes, positions, strict=True):
            ax.set_position(position)
        if suptitle is not None:
            suptitle.set_position(suptitle_position)
    canvas.draw()
    if layout is None:  # The layout engine places the title too.
        _LAYOUTS[layout_key] = ([ax.get_position() for ax in axes],
                                suptitle.get_position() if suptitle is not None else None)
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
