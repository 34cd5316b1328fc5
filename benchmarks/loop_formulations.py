"""Why a loop of gradients inside one compiled call was slow on XLA:CPU, and what fixes it.

Integrated gradients with S steps on N probe digits is S input gradients of a batch of N.
This script computes exactly that sum in several formulations, in one process, interleaved
(median of `--repeats` after a warm-up), and prints run time, compile time, and run time
relative to S x one batched gradient (the issue's target: at most 1.2):

  python loop        S calls of one jitted batch-N gradient, dispatched from Python.
  scan / fori        `lax.scan` / `lax.fori_loop` over the S points inside one jit.
  scan unroll=8/all  the same scan unrolled 8 steps / completely (no while loop left).
  scan + remat       the scan with the gradient under `jax.checkpoint` (no change expected).
  one pass           all S x N path images in one batch (vmap over points), no loop.
  scan canonical     the scan with the body's convs in XLA:CPU's canonical layout.
  engine c=...       `attribution.build("integrated_gradients", chunk_size=c)`.

XLA:CPU runs a convolution fast only in the canonical layout (data batch-spatial-feature,
kernel spatial-in-out). An input gradient contains convs with spatial-out-in kernels; the
pass that canonicalizes them visits only the entry computation, so inside a while loop they
run on a generic slow path. Unrolling removes the loop; `_conv_layout` fixes the layout.

Run from the repository root (trains the CNN for one epoch first):

    python benchmarks/loop_formulations.py --probes 32 --steps 64
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import attribution  # noqa: E402
from attribution._conv_layout import canonical_convs  # noqa: E402
from benchmarks.attribution import machine_lines, train  # noqa: E402
from trainer import data  # noqa: E402


def _gradient(model):
    def grad(variables, x, t):
        def total(x):
            return jnp.take_along_axis(model.apply(variables, x), t[:, None], axis=1).sum()
        return jax.grad(total)(x)
    return grad


def formulations(model, variables, steps: int, chunks: list[int]) -> dict:
    """Name -> (IG maps function (variables, images, targets), whether it is jitted)."""
    grad = _gradient(model)
    alphas = (jnp.arange(steps, dtype=jnp.float32) + 0.5) / steps
    one = jax.jit(grad)

    def python_loop(v, x, t):
        return x * sum(one(v, (k + 0.5) / steps * x, t) for k in range(steps)) / steps

    def scan(body_grad, unroll=1):
        def run(v, x, t):
            def body(acc, a):
                return acc + body_grad(v, a * x, t), None
            return x * jax.lax.scan(body, jnp.zeros_like(x), alphas, unroll=unroll)[0] / steps
        return run

    def fori(v, x, t):
        total = jax.lax.fori_loop(0, steps, lambda k, acc: acc + grad(v, alphas[k] * x, t),
                                  jnp.zeros_like(x))
        return x * total / steps

    def one_pass(v, x, t):
        return x * jax.vmap(lambda a: grad(v, a * x, t))(alphas).sum(axis=0) / steps

    found = {
        "python loop": (python_loop, False),  # Compiles the gradient once, at warm-up.
        "scan": (scan(grad), True),
        "fori": (fori, True),
        "scan unroll=8": (scan(grad, 8), True),
        "scan unroll=all": (scan(grad, True), True),
        "scan + remat": (scan(jax.checkpoint(grad)), True),
        "one pass": (one_pass, True),
        "scan canonical": (scan(canonical_convs(grad)), True),
    }
    key = jax.random.key(0)
    for c in chunks:
        ig = attribution.build("integrated_gradients", model, variables, (28, 28, 1),
                               steps=steps, chunk_size=c)
        found[f"engine c={c}"] = (lambda v, x, t, ig=ig: ig(v, x, t, key), True)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=32)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--chunks", default="32,64,128", help="engine chunk sizes")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="",
                        help="comma-separated formulations (besides python loop and engine)")
    args = parser.parse_args(argv)

    splits = data.load_mnist("auto")
    model, params, accuracy, seconds = train("cnn", splits, epochs=1)
    variables = {"params": params}
    x = jnp.asarray(splits.eval_images[:args.probes])
    t = jnp.asarray(splits.eval_labels[:args.probes], jnp.int32)
    chunks = [int(c) for c in args.chunks.split(",") if c.strip()]
    print(f"# IG-shaped loops: {args.steps} gradients of {args.probes} digits\n")
    print("\n".join(machine_lines()))
    print(f"- CNN trained 1 epoch ({seconds:.0f} s, accuracy {accuracy:.3f}); median of "
          f"{args.repeats} interleaved runs after a warm-up\n")

    gradient = attribution.build("gradient", model, variables, (28, 28, 1))
    runs = {"one gradient": jax.jit(_gradient(model)),
            "engine gradient": jax.jit(lambda v, x, t: gradient(v, x, t, jax.random.key(0)))}
    compile_s = {}
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    for name, (fn, jitted) in formulations(model, variables, args.steps, chunks).items():
        if only and name not in only and not name.startswith(("engine", "python")):
            continue
        if jitted:
            start = time.perf_counter()
            fn = jax.jit(fn).lower(variables, x, t).compile()
            compile_s[name] = time.perf_counter() - start
        runs[name] = fn
    times = {name: [] for name in runs}
    for _ in range(args.repeats + 1):  # The first round is the warm-up.
        for name, fn in runs.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(variables, x, t))
            times[name].append(time.perf_counter() - start)
    reference = runs["python loop"](variables, x, t)
    one_ms = 1e3 * statistics.median(times["one gradient"][1:])
    print("| formulation | run ms | run / (S x one gradient) | compile s | max abs diff |")
    print("|---|---|---|---|---|")
    for name, fn in runs.items():
        ms = 1e3 * statistics.median(times[name][1:])
        if name in ("one gradient", "engine gradient"):
            what = "plain" if name == "one gradient" else "engine's (cache-sized chunks)"
            print(f"| one batched gradient, {what} | {ms:.1f} | - | - | - |")
            continue
        diff = float(jnp.max(jnp.abs(fn(variables, x, t) - reference)))
        compiled = f"{compile_s[name]:.2f}" if name in compile_s else "-"
        print(f"| {name} | {ms:.0f} | {ms / (args.steps * one_ms):.2f} | {compiled} "
              f"| {diff:.1e} |")
    print(f"\nload average after: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
