"""A single-pass method's time per pass, by probe count: where XLA:CPU runs the same loop slowly.

A single-pass method (the input gradient and its relatives) cuts N probes into passes of two
lanes of 16 images and runs the passes under `lax.scan`. The compiled programs for different N
differ only in the loop's trip count and the sizes of the input and output: the loop body is
the same HLO. This script times the method at each N in fresh processes (`--rounds` of them,
one child per round, every N in each child: a process keeps its speed from call to call) and
prints the median time, the time per 32 images (one pass), and how many cores were busy.

On the project's 2-core CPU (jax 0.10.2), the CNN's gradient took about 6 ms per pass at 4 to
7 passes (N = 128-224) and at 16 (N = 512), but about 8 ms per pass at 8 to 15 (N = 256-480);
a few processes ran N = 256 at 5 ms per pass. See README, Performance, "One gradient pass".

Run from the repository root (random weights: the speed does not depend on them):

    python benchmarks/pass_counts.py --probes 128,192,224,256,288,512 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))


def child(method: str, model_name: str, probes: list[int], repeats: int) -> dict:
    """{N: (median ms, cores busy)} for `method` on `model_name` with random weights."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import attribution
    from attribution._chunked import _single_pass_layout
    from trainer import models

    model = models.create_model(model_name)
    variables = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    rng = np.random.default_rng(0)
    key = jax.random.key(0)
    out = {}
    for n in probes:
        images = jnp.asarray(rng.uniform(size=(n, 28, 28, 1)), jnp.float32)
        targets = jnp.asarray(rng.integers(0, 10, n), jnp.int32)
        fn = jax.jit(attribution.build(method, model, variables, (28, 28, 1)))
        fn(variables, images, targets, key).block_until_ready()
        times = []
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(repeats):
            start = time.perf_counter()
            fn(variables, images, targets, key).block_until_ready()
            times.append(time.perf_counter() - start)
        cores = (time.process_time() - cpu) / (time.perf_counter() - wall)
        out[n] = (1e3 * statistics.median(times), cores,
                  list(_single_pass_layout(n, None, forward_only=False)))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="gradient")
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--probes", default="128,192,224,256,288,320,512")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes")
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per N and process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    probes = [int(n) for n in args.probes.split(",")]
    if args.child:
        result = child(args.method, args.model, probes, args.repeats)
        print("RESULT " + json.dumps(result), flush=True)
        return

    from benchmarks.attribution import machine_lines

    rounds = []
    for _ in range(args.rounds):
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child",
                               "--method", args.method, "--model", args.model,
                               "--probes", args.probes, "--repeats", str(args.repeats)],
                              capture_output=True, text=True, check=False)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            sys.exit(f"child failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        rounds.append({int(n): v for n, v in json.loads(line.removeprefix("RESULT ")).items()})
    print(f"{args.method} on the {args.model}, {args.rounds} processes, median of "
          f"{args.repeats} calls each:")
    print(*machine_lines(), sep="\n")
    print()
    print("| N | passes x lanes x lane size | ms, by process | ms per 32 images | cores busy |")
    print("|---|---|---|---|---|")
    for n in probes:
        ms = [r[n][0] for r in rounds]
        passes, lanes, size = rounds[0][n][2]
        per_pass = ", ".join(f"{m / n * 32:.2f}" for m in ms)
        cores = ", ".join(f"{r[n][1]:.2f}" for r in rounds)
        print(f"| {n} | {passes} x {lanes} x {size} | {', '.join(f'{m:.1f}' for m in ms)} | "
              f"{per_pass} | {cores} |")


if __name__ == "__main__":
    main()
