"""What both callbacks cost a whole default run: the trainer with them on, against them off.

Runs `trainer.train.train_and_evaluate` on `configs/cnn.py` (its defaults: the attribution
callback on the log-spaced schedule with every method that applies, the sanity callback every
2 epochs and at the end) twice in fresh processes, once as configured and once with
`attribution.enabled=False, sanity.enabled=False`, on 60,000-digit epochs made by repeating
the training digits (the 5,000-digit subset, when that is what `MNIST_DIR` holds). The
compilation cache is off, so every compile is paid. Per run it prints the wall time of the
whole `train_and_evaluate` call, of its epochs (the epoch lines' times: training, evaluation
and waiting for callbacks), and the ratio.

Run from the repository root:

    python benchmarks/epoch_ratio.py                 # 10 epochs, as configs/cnn.py
    python benchmarks/epoch_ratio.py --epochs 3 --digits 20000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))


def child(callbacks: str, epochs: int, digits: int, workdir: str) -> dict:
    import numpy as np

    from configs import cnn
    from trainer import data, train

    loaded = train.load_data

    def tiled(config):
        splits = loaded(config)
        reps = -(-digits // len(splits.train_labels))
        return data.MnistSplits(
            np.tile(splits.train_images, (reps, 1, 1, 1))[:digits],
            np.tile(splits.train_labels, reps)[:digits], splits.eval_images,
            splits.eval_labels, splits.source)

    train.load_data = tiled  # Synthesized full-size epochs: timing only.
    config = cnn.get_config()
    config.num_epochs = epochs
    config.attribution.enabled = callbacks in ("both", "attribution")
    config.sanity.enabled = callbacks in ("both", "sanity")
    epoch_seconds = []
    reported = train._report

    def report(epoch, num_epochs, start_epoch, logs, seconds, *rest):
        epoch_seconds.append(seconds)
        return reported(epoch, num_epochs, start_epoch, logs, seconds, *rest)

    train._report = report
    start = time.perf_counter()
    train.train_and_evaluate(config, workdir)
    total = time.perf_counter() - start
    return {"total": total, "epochs": epoch_seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--digits", type=int, default=60_000, help="training digits per epoch")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--each", action="store_true",
                        help="also run each callback alone, and print every epoch's time")
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = child(args.child, args.epochs, args.digits, args.workdir)
        print(json.dumps(result))
        return
    results = {}
    for side in ("off", "both", *(("attribution", "sanity") if args.each else ())):
        with tempfile.TemporaryDirectory() as workdir:
            done = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--child", side, "--workdir",
                 os.path.join(workdir, "run"), "--epochs", str(args.epochs), "--digits",
                 str(args.digits)], capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"run with callbacks {side} failed:\n{done.stderr[-3000:]}")
        results[side] = json.loads(done.stdout.strip().splitlines()[-1])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"- configs/cnn.py, {args.epochs} epochs of {args.digits:,} digits; "
          f"{os.cpu_count()} cores, load average {load}\n")
    print("| measure | callbacks off | both callbacks on | ratio |")
    print("|---|---|---|---|")
    off, on = results["off"], results["both"]
    for label, a, b in (("whole train_and_evaluate, s", off["total"], on["total"]),
                        ("sum of epoch times, s", sum(off["epochs"]), sum(on["epochs"])),
                        ("first epoch, s", off["epochs"][0], on["epochs"][0]),
                        ("later epochs (median), s", sorted(off["epochs"][1:] or [0])[
                            len(off["epochs"][1:]) // 2], sorted(on["epochs"][1:] or [0])[
                            len(on["epochs"][1:]) // 2])):
        ratio = f"**{b / a:.3f}x**" if a else "-"
        print(f"| {label} | {a:.1f} | {b:.1f} | {ratio} |")
    if args.each:
        print("\nEvery epoch's time (s), training + evaluation + waiting for callbacks:\n")
        for side, result in results.items():
            print(f"- {side}: total {result['total']:.1f}; epochs "
                  f"{', '.join(f'{t:.1f}' for t in result['epochs'])}")


if __name__ == "__main__":
    main()

