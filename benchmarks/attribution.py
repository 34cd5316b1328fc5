"""What each attribution method costs on a trained MNIST CNN: compile time, run time, memory.

The script trains `trainer.models.CNN` on the training digits (`trainer.data.load_mnist("auto")`:
the IDX folder in MNIST_DIR if set, else the 5,000 offline digits) for `--epochs`, then, for
every method in `attribution.names()` at its default options and for each probe-batch size N,
runs the method in a fresh child process and reports:

  compile s       `jax.jit(fn).lower(...).compile()`, timed.
  run ms          median wall time of `--repeats` calls after one warm-up call, each
                  ended by `block_until_ready`.
  ms/digit        run ms / N.
  RSS compile/run peak growth of the child's resident memory (Linux VmHWM, reset through
                  /proc/self/clear_refs) above its resident size just before compiling,
                  resp. just before the first call; includes allocator and XLA caches.
  XLA temp/io     `compiled.memory_analysis()`: XLA's planned scratch buffers, and argument
                  plus output bytes. Deterministic; cheap; on CPU it may under-count what
                  the runtime allocates outside the plan.
  dev peak        the device's `peak_bytes_in_use` (GPU only; "-" on CPU).

CAM needs a global-average-pool head, so it runs on `trainer.models.CNNGAP` (trained the same
way); the table's model column says which model each row used.

Then, for `--peak-probes` digits (default 1,024), one more child process compiles and runs
every method one after the other, as the training callback does, and reports its peak
resident memory (VmHWM) in absolute terms and above the process after loading JAX, the
models and the probes: the figure to hold against a memory budget. Where the data has fewer
eval digits than that (the offline subset has 500), the probe set repeats them.

Run from the repository root:

    python benchmarks/attribution.py                    # all methods, N = 32 and 256
    python benchmarks/attribution.py --quick            # smoke run: N = 8, few repeats
    python benchmarks/attribution.py --methods gradient,integrated_gradients --probes 64 \
        --repeats 10
    python benchmarks/attribution.py --probes 32 --peak-probes 2048
    python benchmarks/attribution.py --one-process      # every row in one child (GPU runs:
                                                        # a fresh process per row costs more
                                                        # than the rows; RSS then grows row
                                                        # on row, the dev peak is the process's)

Prints the machine, the method defaults and a markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

# Run as a script, this file's folder comes first on sys.path, and this file's name would
# shadow the `attribution` package: put the repository root there instead.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import attribution  # noqa: E402
from trainer import data, models, steps  # noqa: E402

GAP_ONLY = ("cam",)  # Methods that need CNNGAP's global-average-pool head.


# Machine ------------------------------------------------------------------------------------


def machine_lines() -> list[str]:
    """Markdown bullet lines describing the CPU, the JAX backend and the current load."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            found = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.MULTILINE)
        cpu = found.group(1).strip() if found else cpu
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    device = jax.devices()[0]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        f"- CPU: {cpu}; {os.cpu_count()} cores ({usable} usable); load average {load}",
        f"- JAX {jax.__version__}, backend {jax.default_backend()}, device {device.device_kind}"
        f" (x{jax.device_count()}); Python {platform.python_version()}",
    ]


# Memory (Linux /proc) -----------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            found = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.MULTILINE)
        return int(found.group(1)) if found else None
    except OSError:
        return None


def _reset_peak() -> bool:
    """Resets VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _device_bytes(key: str) -> int | None:
    stats = jax.devices()[0].memory_stats() if hasattr(jax.devices()[0], "memory_stats") else None
    return None if not stats else stats.get(key)


# Training -----------------------------------------------------------------------------------


def train(model_name: str, splits: data.MnistSplits, epochs: int, seed: int = 0,
          batch_size: int = 64):
    """Trains `model_name` with Adam(1e-3); returns (model, params, eval accuracy, seconds)."""
    start = time.perf_counter()
    model = models.create_model(model_name)
    state = steps.create_train_state(model, jax.random.PRNGKey(seed),
                                     splits.train_images.shape[1:],
                                     steps.make_optimizer("adam", 1e-3))
    for epoch in range(1, epochs + 1):
        for images, labels in data.batches(splits.train_images, splits.train_labels,
                                           batch_size, seed, epoch):
            state, _ = steps.train_step(state, images, labels)
    metrics = steps.eval_step(state, splits.eval_images, splits.eval_labels).compute()
    params = jax.device_get(state.params)
    return model, params, float(metrics["accuracy"]), time.perf_counter() - start


# Child: one (method, N) in a fresh process --------------------------------------------------


def run_child(spec: dict) -> dict:
    """Compiles and times one method on N probes; returns the measurements."""
    with open(spec["params"], "rb") as f:
        params = pickle.load(f)[spec["model"]]
    probes = np.load(spec["probes"])
    n = spec["n"]
    model = models.create_model(spec["model"])
    variables = {"params": jax.device_put(params)}
    images = jnp.asarray(probes["images"][:n])
    targets = jnp.asarray(probes["labels"][:n], jnp.int32)
    key = jax.random.key(0)
    fn = attribution.build(spec["method"], model, variables, tuple(images.shape[1:]))
    jax.block_until_ready((variables, images, targets))

    rss_before = _status_kib("VmRSS")
    can_reset = _reset_peak()
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(variables, images, targets, key).compile()
    compile_s = time.perf_counter() - start
    compile_peak = _status_kib("VmHWM") if can_reset else None

    rss_before_run = _status_kib("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    compiled(variables, images, targets, key).block_until_ready()
    first_s = time.perf_counter() - start
    times = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        compiled(variables, images, targets, key).block_until_ready()
        times.append(time.perf_counter() - start)
    run_peak = _status_kib("VmHWM") if can_reset else None

    analysis = compiled.memory_analysis()
    return {
        "compile_s": compile_s,
        "first_ms": 1e3 * first_s,
        "run_ms": 1e3 * statistics.median(times),
        "min_ms": 1e3 * min(times),
        "rss_compile_mib": None if compile_peak is None else (compile_peak - rss_before) / 1024,
        "rss_run_mib": None if run_peak is None else (run_peak - rss_before_run) / 1024,
        "xla_temp_mib": None if analysis is None else analysis.temp_size_in_bytes / 2**20,
        "xla_io_mib": None if analysis is None else (
            analysis.argument_size_in_bytes + analysis.output_size_in_bytes) / 2**20,
        "dev_peak_mib": (lambda b: None if b is None else b / 2**20)(
            _device_bytes("peak_bytes_in_use")),
    }


def run_all_child(spec: dict) -> dict:
    """Compiles and runs every method once on N probes in this process; returns peak memory."""
    with open(spec["params"], "rb") as f:
        params = pickle.load(f)
    probes = np.load(spec["probes"])
    images = jnp.asarray(probes["images"][:spec["n"]])
    targets = jnp.asarray(probes["labels"][:spec["n"]], jnp.int32)
    key = jax.random.key(0)
    variables = {name: {"params": jax.device_put(p)} for name, p in params.items()}
    jax.block_until_ready((variables, images, targets))
    rss_before = _status_kib("VmRSS")
    can_reset = _reset_peak()
    seconds = {}
    for name in spec["methods"]:
        model_name = "cnn_gap" if name in GAP_ONLY else "cnn"
        model = models.create_model(model_name)
        fn = attribution.build(name, model, variables[model_name], tuple(images.shape[1:]))
        start = time.perf_counter()
        jax.jit(fn)(variables[model_name], images, targets, key).block_until_ready()
        seconds[name] = time.perf_counter() - start
    peak = _status_kib("VmHWM") if can_reset else None
    return {"rss_before_mib": None if rss_before is None else rss_before / 1024,
            "peak_mib": None if peak is None else peak / 1024, "seconds": seconds}


# Parent -------------------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _options_text(name: str) -> str:
    defaults = attribution.get(name).defaults
    return ", ".join(f"{k}={v!r}" for k, v in defaults.items()) or "(none)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", default="32,256", help="comma-separated probe-batch sizes")
    parser.add_argument("--methods", default="", help="comma-separated methods; empty: all")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls after warm-up")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs before timing")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: N = 8, 2 repeats, 1,024 training digits")
    parser.add_argument("--peak-probes", type=int, default=1024,
                        help="probes for the all-methods peak-memory run; 0 skips it")
    parser.add_argument("--one-process", action="store_true",
                        help="time every method and N in one child process, one after another")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        if spec.get("batch"):
            for row in spec["batch"]:  # One line per row, so that a failure loses only it.
                try:
                    print(json.dumps(run_child(row)), flush=True)
                except Exception as e:  # noqa: BLE001 - reported in the row, the run goes on
                    print(json.dumps({"error": f"{type(e).__name__}: {e}"[:80]}), flush=True)
            return
        print(json.dumps(run_all_child(spec) if spec.get("all") else run_child(spec)))
        return

    sizes = [8] if args.quick else [int(s) for s in args.probes.split(",") if s.strip()]
    repeats = 2 if args.quick else args.repeats
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] or attribution.names()
    for name in methods:
        try:
            attribution.get(name)
        except ValueError as e:
            parser.error(str(e))
    if not sizes or min(sizes) < 1 or repeats < 1:
        parser.error("--probes needs positive sizes and --repeats must be >= 1.")

    splits = data.load_mnist("auto")
    if args.quick:
        splits = data.MnistSplits(splits.train_images[:1024], splits.train_labels[:1024],
                                  splits.eval_images, splits.eval_labels, splits.source)
    peak_n = 0 if args.quick else args.peak_probes
    if max(sizes) > len(splits.eval_labels):
        parser.error(f"--probes {max(sizes)} exceeds the {len(splits.eval_labels)} eval digits.")
    needed = sorted({"cnn_gap" if m in GAP_ONLY else "cnn" for m in methods})

    print("# Attribution methods: compile time, run time, memory\n")
    print("\n".join(machine_lines()))
    print(f"- Data: {splits.describe()}; probes: the first N eval digits, targets = labels")
    trained = {}
    for name in needed:
        _, params, accuracy, seconds = train(name, splits, args.epochs)
        trained[name] = params
        print(f"- Model {name}: {args.epochs} epoch(s) Adam 1e-3 batch 64 in {seconds:.1f} s; "
              f"eval accuracy {accuracy:.3f}")
    print(f"- Timing: median of {repeats} calls after 1 warm-up; each method and N in a fresh "
          "process\n")
    print("Method defaults:\n")
    for name in methods:
        print(f"- {name}: {_options_text(name)}")
    print()

    header = ["method", "model", "N", "compile s", "first ms", "run ms", "ms/digit",
              "RSS compile MiB", "RSS run MiB", "XLA temp MiB", "XLA args+out MiB",
              "dev peak MiB"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    with tempfile.TemporaryDirectory() as tmp:
        params_path, probes_path = os.path.join(tmp, "params.pkl"), os.path.join(tmp, "probes.npz")
        with open(params_path, "wb") as f:
            pickle.dump(trained, f)
        # Repeats the eval digits where a probe set is larger than the eval split.
        count = max(*sizes, peak_n)
        np.savez(probes_path, images=np.resize(splits.eval_images, (count, 28, 28, 1)),
                 labels=np.resize(splits.eval_labels, count))
        rows = [{"method": name, "model": "cnn_gap" if name in GAP_ONLY else "cnn", "n": n,
                 "repeats": repeats, "params": params_path, "probes": probes_path}
                for name in methods for n in sizes]
        for spec, result in zip(rows, _run_rows(rows, args.one_process), strict=True):
            if "error" in result:
                print(f"| {spec['method']} | {spec['model']} | {spec['n']} | failed: "
                      f"{result['error']} |", flush=True)
                continue
            r, n = result, spec["n"]
            row = [spec["method"], spec["model"], str(n), _fmt(r["compile_s"], 2),
                   _fmt(r["first_ms"]), _fmt(r["run_ms"]), _fmt(r["run_ms"] / n, 3),
                   _fmt(r["rss_compile_mib"]), _fmt(r["rss_run_mib"]),
                   _fmt(r["xla_temp_mib"]), _fmt(r["xla_io_mib"], 2),
                   _fmt(r["dev_peak_mib"])]
            print("| " + " | ".join(row) + " |", flush=True)
        if peak_n:
            _print_peak(methods, peak_n, params_path, probes_path, len(splits.eval_labels))


def _run_rows(rows: list[dict], one_process: bool):
    """Yields each row's measurements (or {"error": ...}) as its child reports it."""
    batches = [{"batch": rows}] if one_process else [{"batch": [row]} for row in rows]
    for spec in batches:
        # stderr to a file: a child that logs much (XLA's warnings on a GPU) cannot fill a pipe
        # nobody reads while the rows are streamed from stdout.
        with tempfile.TemporaryFile("w+") as errors, subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)],
                stdout=subprocess.PIPE, stderr=errors, text=True) as child:
            reported = 0
            for line in child.stdout:
                if line.startswith("{"):
                    reported += 1
                    yield json.loads(line)
            child.wait()
            errors.seek(0)
            last = (errors.read().strip().splitlines() or ["?"])[-1][:80]
        for missing in range(len(spec["batch"]) - reported):
            yield {"error": f"exit {child.returncode}: {last}" if missing == 0
                   else "not run: the child process had stopped"}


def _print_peak(methods: list[str], n: int, params_path: str, probes_path: str,
                eval_count: int) -> None:
    spec = {"all": True, "methods": methods, "n": n, "params": params_path,
            "probes": probes_path}
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)],
                          capture_output=True, text=True, check=False)
    print(f"\nAll {len(methods)} methods at default options, one after the other in one "
          f"process, on {n:,} probes" + (f" ({eval_count} eval digits repeated)"
                                         if n > eval_count else "") + ":\n")
    if done.returncode:
        print(f"- failed: {(done.stderr.strip().splitlines() or ['?'])[-1][:200]}")
        return
    r = json.loads(done.stdout.strip().splitlines()[-1])
    above = (None if r["peak_mib"] is None or r["rss_before_mib"] is None
             else r["peak_mib"] - r["rss_before_mib"])
    print(f"- peak resident memory (VmHWM) {_fmt(r['peak_mib'], 0)} MiB; "
          f"{_fmt(above, 0)} MiB above the process with JAX, models and probes loaded")
    total = sum(r["seconds"].values())
    print(f"- compile + first run, all methods: {total:.1f} s ("
          + ", ".join(f"{k} {v:.1f}" for k, v in r["seconds"].items()) + ")")


if __name__ == "__main__":
    main()
