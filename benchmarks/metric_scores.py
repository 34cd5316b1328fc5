"""Every evaluation metric for every method on the trained MNIST CNN (README tables).

Trains `trainer.models.CNN` as `benchmarks/sanity_scores.py` does (PRNGKey(0), Adam 1e-3, batch
64, 2 epochs, the real training digits), takes `--probes` class-balanced eval digits and, for
every method that applies to the CNN at its default options, explains the predicted class and
scores the maps with every metric of `attribution.metrics` at its defaults (mean over the
probes), plus the cascading randomization's Spearman-abs and SSIM after every layer is
re-initialized and eMPRT from the same cascade. Map-only metrics also score uniform-noise
maps ("random maps"). Prints three markdown tables (faithfulness; the other families; the verdict of
`attribution.verdict`) and each method's time. Run from the repository root:

    MNIST_DIR=path/to/mnist python benchmarks/metric_scores.py
    python benchmarks/metric_scores.py --methods gradient,integrated_gradients --probes 8
"""

from __future__ import annotations

import argparse
import os
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import attribution  # noqa: E402
import attribution.metrics as metrics  # noqa: E402
from attribution import sanity, verdict  # noqa: E402
from attribution.metric import FAMILIES, always  # noqa: E402
from benchmarks.attribution import machine_lines  # noqa: E402
from benchmarks.sanity_scores import applicable_methods, balanced_probes, train  # noqa: E402
from trainer import data  # noqa: E402

RANDOM = "random maps"
CASCADE, CASCADE_SSIM, EMPRT = "cascading_spearman_abs", "cascading_ssim", "efficient_mprt"


def scores(model, variables, images: np.ndarray, fns: dict, seed: int = 0,
           names: list[str] | None = None) -> dict:
    """method -> score name -> mean over the probes (host floats); also RANDOM and "ms"."""
    images = jnp.asarray(images)
    classifier = attribution.as_classifier(model, variables, tuple(images.shape[1:]))
    key = jax.random.key(seed)
    cascade = sanity.randomization_scores(fns, model, variables, images, seed=seed, key=key,
                                          similarities=("spearman_abs", "ssim"),
                                          num_maps=images.shape[0])
    targets = jnp.asarray(cascade.targets[0])
    built = {n: metrics.build(n, classifier) for n in names or metrics.names()}
    out, times = {}, {}
    for m, fn in fns.items():
        start = time.perf_counter()
        maps = jnp.asarray(cascade.maps[m][0])
        applicable = {n: f for n, f in built.items()
                      if metrics.get(n).applies_to(attribution.get(m))}
        run = jax.jit(lambda v, x, t, a, k, fns=applicable, fn=fn: metrics.evaluate(
            fns, v, x, t, a, fn, k))
        values = jax.device_get(run(variables, images, targets, maps, key))
        out[m] = {n: float(np.nanmean(v)) for n, v in values.items()}
        out[m][CASCADE] = float(cascade.scores[m]["spearman_abs"][-1])
        out[m][CASCADE_SSIM] = float(cascade.scores[m]["ssim"][-1])
        out[m][EMPRT] = float(np.mean(sanity.efficient_mprt(maps, cascade.maps[m][-1])))
        times[m] = time.perf_counter() - start
        print(f"  {m}: {times[m]:.1f} s", file=sys.stderr, flush=True)
    noise = jnp.asarray(np.random.default_rng(seed).uniform(size=images.shape), jnp.float32)
    map_only = {n: f for n, f in built.items()
                if not metrics.get(n).explains and metrics.get(n).applies_to is always}
    values = jax.device_get(jax.jit(lambda v, x, t, a, k: metrics.evaluate(
        map_only, v, x, t, a, None, k))(variables, images, targets, noise, key))
    out[RANDOM] = {n: float(np.nanmean(v)) for n, v in values.items()}
    return {"scores": out, "seconds": times}


def table(result: dict, columns: list[str]) -> str:
    header = ["method", *columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for m, values in result["scores"].items():
        cells = [f"{values[c]:.3g}" if c in values else "" for c in columns]
        lines.append("| " + " | ".join([m, *cells]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2, help="training epochs")
    parser.add_argument("--probes", type=int, default=32, help="class-balanced eval digits")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    parser.add_argument("--methods", default="",
                        help="comma-separated methods or sets; empty: every one that applies")
    parser.add_argument("--metrics", default="",
                        help="comma-separated metrics or families; empty: every one")
    args = parser.parse_args(argv)
    only = [m.strip() for m in args.methods.split(",") if m.strip()] or None
    start = time.perf_counter()
    splits = data.load_mnist("auto")
    model, variables = train(splits, args.epochs)
    idx = balanced_probes(splits.eval_labels, args.probes)
    images = np.asarray(splits.eval_images[idx])
    fns, skipped = applicable_methods(model, variables, images.shape[1:], only)
    chosen = metrics.expand([n.strip() for n in args.metrics.split(",") if n.strip()]) or None
    result = scores(model, variables, images, fns, args.seed, chosen)
    print("# Evaluation metrics on the trained CNN\n")
    print("\n".join(machine_lines()))
    print(f"- Data: {splits.describe()}; CNN trained {args.epochs} epochs (as "
          "benchmarks/sanity_scores.py)")
    print(f"- Probes: {len(idx)} class-balanced eval digits; maps explain the predicted class; "
          f"every method and metric at its default options; skipped: "
          f"{', '.join(skipped) or 'none'}\n")
    by_family = {f: [n for n in metrics.names(f) if chosen is None or n in chosen]
                 for f in FAMILIES}
    print("## Faithfulness\n")
    print(table(result, by_family["faithfulness"]))
    print("\n## Robustness, randomisation, complexity, localisation, axioms\n")
    others = [*by_family["robustness"], *by_family["randomisation"], CASCADE, CASCADE_SSIM,
              EMPRT, *(n for f in FAMILIES[3:] for n in by_family[f])]
    print(table(result, others))
    print("\n## Verdict\n")
    methods = {m: v for m, v in result["scores"].items() if m != RANDOM}
    print(verdict.markdown(methods, result["scores"][RANDOM]))
    print(f"\nSeconds per method (all metrics, {len(idx)} probes, compile included): " + ", ".join(
        f"{m} {s:.0f}" for m, s in result["seconds"].items()))
    print(f"\nTotal {time.perf_counter() - start:.0f} s.")


if __name__ == "__main__":
    main()
