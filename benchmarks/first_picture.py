"""Time from the main command's start to its first picture on disk.

Launches `python -m trainer --config configs/cnn.py --workdir <empty folder>` (the
interpreter running this script, so its installed packages) and polls the workdir every 50 ms
for the step-0 firing: its history record (`history/firings.jsonl`) and the
`attributions/overview` image in the TensorBoard event file. Prints both times, the whole
command's time and the console lines that say what was compiled when, for `--runs` launches.

Run from the repository root (`MNIST_DIR` as for the main command):

    python benchmarks/first_picture.py
    python benchmarks/first_picture.py --runs 3 --config configs/cnn.py:tiny
    python benchmarks/first_picture.py --runs 3 --stop-at-picture   # ends each run there
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time

OVERVIEW_TAG = b"attributions/overview"


def _has_overview(workdir: str) -> bool:
    for path in glob.glob(os.path.join(workdir, "events.out.tfevents.*")):
        with open(path, "rb") as f:
            if OVERVIEW_TAG in f.read():
                return True
    return False


def launch(config: str, workdir: str, stop_at_picture: bool = False) -> dict:
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "trainer", "--config", config, "--workdir", workdir],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    record = os.path.join(workdir, "history", "firings.jsonl")
    times: dict[str, float] = {}
    while process.poll() is None and "overview" not in times:
        if "history" not in times and os.path.exists(record) and os.path.getsize(record):
            times["history"] = time.perf_counter() - start
        if _has_overview(workdir):
            times["overview"] = time.perf_counter() - start
        time.sleep(0.05)
    if stop_at_picture and "overview" in times:
        process.terminate()  # A temporary workdir: the picture is all this launch is for.
        output = process.communicate()[0]
        return {**times, "lines": _compile_lines(output)}
    output = process.communicate()[0]
    times["command"] = time.perf_counter() - start
    if process.returncode:
        sys.exit(f"The command failed:\n{output[-3000:]}")
    return {**times, "lines": _compile_lines(output)}


def _compile_lines(output: str) -> list[str]:
    return [line.split("] ", 1)[-1] for line in output.splitlines()
            if "ompil" in line or "epoch 1/" in line]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/cnn.py")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--stop-at-picture", action="store_true",
                        help="end each run once its first overview image is on disk")
    args = parser.parse_args(argv)
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as folder:
            result = launch(args.config, os.path.join(folder, "run"), args.stop_at_picture)
        whole = f"{result['command']:.1f} s" if "command" in result else "(stopped there)"
        print(f"- launch {run}: history record of step 0 at {result.get('history', -1):.1f} s, "
              f"overview image in the event file at {result.get('overview', -1):.1f} s, "
              f"whole command {whole}")
        for line in result["lines"]:
            print(f"    {line}")


if __name__ == "__main__":
    main()
