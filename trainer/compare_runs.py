"""Data randomization test: how alike are two runs' maps of the same probe digits?

Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018, Section 4: a model trained on
permuted labels (`configs/cnn_random_labels.py`) can only memorize, so a method whose maps for
it look like those of a normally trained model (`configs/cnn.py`) does not depend on what the
model learned. This restores both runs' final checkpoints, explains the probe digits stored in
the first run (`probes.json`) with every configured method, and prints per method the mean
similarity of the two runs' maps (1 = the same maps):

    python -m trainer.compare_runs --config configs/cnn.py \\
        --workdir_a runs/cnn --workdir_b runs/cnn_random_labels

Both runs must have trained the config's model with the config's optimizer.
"""

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import attribution
from attribution import sanity
from callbacks.probes import PROBES_FILE, select_probes
from trainer import models, train
from trainer.run import restore_final

SIMILARITIES = sanity.DEFAULT_SIMILARITIES
TARGETS = ("label", "predicted")


def stored_probes(workdirs: Sequence[str]) -> np.ndarray | None:
    """The probe indices in the first of `workdirs` that has a `probes.json`, else None."""
    for workdir in workdirs:
        path = os.path.join(workdir, PROBES_FILE)
        if os.path.exists(path):
            with open(path) as f:
                return np.asarray(json.load(f)["indices"], np.int64)
    return None


def compare_maps(model: Any, variables_a: Any, variables_b: Any, images: np.ndarray,
                 labels: np.ndarray, methods: Mapping[str, Mapping[str, Any]], *,
                 targets: str = "label", seed: int = 0,
                 similarities: Sequence[str] = SIMILARITIES) -> dict[str, dict[str, float]]:
    """Mean similarity of two models' maps of the same images, per method and similarity.

    Args:
        model: The `flax.linen.Module` both variables belong to.
        variables_a, variables_b: The two models' variables.
        images: Float images `[N, H, W, C]`.
        labels: Int labels `[N]`.
        methods: Method name -> options.
        targets: Explain the true "label" for both models, or each model's "predicted" class.
        seed: PRNG seed of stochastic methods (the same noise for both models).
        similarities: Names from `attribution.sanity.SIMILARITIES`.

    Returns:
        `{method: {similarity: mean over the N images}}`.

    Raises:
        ValueError: For an unknown method, option, similarity or `targets`.
    """
    if targets not in TARGETS:
        raise ValueError(f"Unknown targets {targets!r}; valid: {', '.join(TARGETS)}.")
    sims = {name: sanity.get_similarity(name) for name in similarities}
    images = jnp.asarray(images, jnp.float32)
    explain = jax.jit(attribution.build_many(methods, model, variables_a, images.shape[1:]))
    key = jax.random.key(seed)
    maps = []
    for variables in (variables_a, variables_b):
        chosen = (jnp.asarray(labels, jnp.int32) if targets == "label"
                  else attribution.predicted_targets(model, variables, images))
        maps.append(explain(variables, images, chosen, key))
    scores = jax.device_get({m: {s: jnp.mean(fn(maps[0][m], maps[1][m])) for s, fn in sims.items()}
                             for m in methods})
    return {m: {s: float(scores[m][s]) for s in sims} for m in methods}


def format_table(scores: Mapping[str, Mapping[str, float]]) -> str:
    """A plain-text table: one row per method, one column per similarity."""
    columns = list(next(iter(scores.values())))
    width = max(len("method"), *(len(m) for m in scores))
    lines = ["  ".join(["method".ljust(width), *(c.rjust(15) for c in columns)])]
    for method, row in scores.items():
        lines.append("  ".join([method.ljust(width), *(f"{row[c]:15.3f}" for c in columns)]))
    return "\n".join(lines)


def compare_runs(config: ml_collections.ConfigDict, workdir_a: str, workdir_b: str, *,
                 targets: str = "label", methods: str = "") -> str:
    """Restores both runs, compares their maps of the stored probes; returns the report.

    Args:
        config: The experiment config both runs share (model, optimizer, data, methods).
        workdir_a, workdir_b: The runs' workdirs.
        targets: As for `compare_maps`.
        methods: Comma-separated method names; empty: the config's attribution methods.
    """
    for workdir in (workdir_a, workdir_b):  # Before the slow part, not after it.
        if not os.path.isdir(os.path.join(workdir, "checkpoints")):
            raise ValueError(f"No checkpoints in {workdir!r}; train a run there first.")
    section = config.attribution
    if methods.strip():
        section = ml_collections.ConfigDict(section.to_dict())
        section.methods = methods
    chosen_methods = train.attribution_methods(section)
    splits = train.load_data(config)
    shape = splits.eval_images.shape[1:]
    variables_a, epoch_a = restore_final(config, workdir_a, shape)
    variables_b, epoch_b = restore_final(config, workdir_b, shape)
    probes = stored_probes([workdir_a, workdir_b])
    if probes is None:
        probes = select_probes(splits.eval_labels, section.probes_per_class)
    model = models.create_model(config.model, seed=config.seed)
    scores = compare_maps(model, variables_a, variables_b, splits.eval_images[probes],
                          splits.eval_labels[probes], chosen_methods, targets=targets,
                          seed=section.seed)
    header = (f"a: {workdir_a} (epoch {epoch_a})  b: {workdir_b} (epoch {epoch_b})  "
              f"{len(probes)} probes, targets: {targets}; mean similarity of the maps "
              "(1 = the same)")
    return f"{header}\n{format_table(scores)}"


def _main(argv: list[str]) -> None:
    from absl import app, logging

    # Orbax reports every restore at INFO; keep the console to the table.
    logging.get_absl_handler().addFilter(lambda record: "orbax" not in record.pathname)
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    flags = _FLAGS
    try:
        print(compare_runs(flags.config, flags.workdir_a, flags.workdir_b,
                           targets=flags.targets, methods=flags.methods))
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"Error: {' '.join(str(e).split())}")


if __name__ == "__main__":
    # Flags are defined only when run as a program: `trainer.__main__` defines its own --config.
    from absl import app, flags
    from ml_collections import config_flags

    flags.DEFINE_string("workdir_a", None, "Workdir of the first run (e.g. normal labels).")
    flags.DEFINE_string("workdir_b", None, "Workdir of the second run (e.g. random labels).")
    flags.DEFINE_enum("targets", "label", TARGETS, "Explain the true label or each model's "
                      "predicted class.")
    flags.DEFINE_string("methods", "", "Comma-separated methods; empty: the config's.")
    config_flags.DEFINE_config_file("config", None, "Config both runs were trained with.",
                                    lock_config=True)
    flags.mark_flags_as_required(["config", "workdir_a", "workdir_b"])
    _FLAGS = flags.FLAGS
    app.run(_main)
