"""Subprocess side of test_parallel.py: runs under XLA's forced host device count.

  python -m tests.trainer.parallel_worker train WORKDIR
  python -m tests.trainer.parallel_worker attribution VARIABLES_FILE

Each prints one JSON line (prefixed RESULT) that the test reads.
"""

import json
import os
import sys

import jax
import numpy as np
from flax import serialization

import attribution
from attribution._chunked import LANES_VARIABLE
from callbacks.attribution_callback import AttributionCallback
from callbacks.base import Callback
from callbacks.metric_writer import MultiWriter
from configs import cnn, cnn_gap
from trainer import models, parallel, train

jax.config.update("jax_default_matmul_precision", "highest")


class _Logs(Callback):
    def __init__(self):
        self.epochs = []

    def on_epoch_end(self, epoch, state, logs=None):
        self.epochs.append(dict(logs))


def train_one_epoch(workdir: str) -> dict:
    """Losses and final parameters of one small epoch on 1 device and on all devices."""
    out = {"devices": jax.device_count()}
    params = {}
    for num_devices in (1, 0):
        config = cnn.get_config("tiny")
        with config.unlocked():
            config.num_epochs = 1
            config.num_devices = num_devices
            config.batch_size = 32
            config.data.max_train_examples = 256
            config.data.max_eval_examples = 100
            config.eval_batch_size = 40  # 100 = 2 x 40 + 20: the short last batch is replicated.
            config.attribution.enabled = False
            config.sanity.enabled = False
        logs = _Logs()
        state = train.train_and_evaluate(config, os.path.join(workdir, str(num_devices)), [logs])
        kernel = state.params["Dense_0"]["kernel"]
        out[f"logs_{num_devices}"] = logs.epochs[-1]
        out[f"param_devices_{num_devices}"] = len(kernel.sharding.device_set)
        params[num_devices] = jax.device_get(state.params)
    diffs = jax.tree.leaves(jax.tree.map(lambda a, b: float(np.abs(a - b).max()), *params.values()))
    out["max_param_diff"] = max(diffs)
    config = cnn.get_config("tiny")
    with config.unlocked():
        config.batch_size = 30
    try:
        train.train_and_evaluate(config, os.path.join(workdir, "bad"))
    except train.SetupError as e:
        out["bad_batch_error"] = str(e)
    return out


def sharded_attribution(variables_file: str) -> dict:
    """Every method's maps for 6 probes, on one device and split over all (padded to 8)."""
    model = models.create_model("cnn_gap")
    with open(variables_file, "rb") as f:
        data = np.load(f)
        images, labels = data["images"], data["labels"]
        variables = serialization.msgpack_restore(data["variables"].tobytes())
    methods = train.attribution_methods(cnn_gap.get_config("tiny").attribution)
    # All windows in one pass: XLA's cost analysis counts a loop body once, so flops compare
    # only between loop-free programs.
    methods["occlusion"]["chunk_size"] = 4096
    methods["smoothgrad"]["num_samples"] = 2  # 16 noisy images: one pass of its base method
    maps, flops = {}, {}
    # Every method in one program (the default), in two lanes per pass (the 2-core machine's
    # layout), and one program per method, whose cost analysis shows each method's own share:
    # in one lane, half the model copies to compile (the maps are the same in any layout, and
    # compared below).
    for per_method in (False, True):
        os.environ[LANES_VARIABLE] = "1" if per_method else "2"  # Read when a method is traced.
        for mesh in (None, parallel.make_mesh()):
            callback = AttributionCallback(model, images, labels, MultiWriter([]),
                                           methods=methods, targets="predicted", mesh=mesh,
                                           evolution=False, per_method_timing=per_method)
            size = 1 if mesh is None else mesh.size
            maps[size, per_method] = callback.fire(1, variables)
            callback.wait()
            # XLA's cost analysis of a partitioned executable counts one device's share.
            # Drift compares whole firings (a few thousand flops), replicated on every device.
            flops[size, per_method] = {
                name: compiled.cost_analysis()["flops"]
                for name, compiled in callback._compiled.items() if name != "_drift"}
    devices = jax.device_count()
    single = maps[1, False]
    return {
        "devices": devices,
        "methods": sorted(single),
        "shapes": {name: list(m.shape) for name, m in maps[devices, False].items()},
        # Each layout's maps against one device's in one program.
        "max_abs_diff": {name: max(float(np.abs(single[name] - maps[key][name]).max())
                                   for key in maps) for name in single},
        "max_abs": {name: float(np.abs(single[name]).max()) for name in single},
        "stochastic": [name for name in single if attribution.get(name).stochastic],
        "flops_single": {**flops[1, True], "_firing": flops[1, False]["_firing"]},
        "flops_per_device": {**flops[devices, True], "_firing": flops[devices, False]["_firing"]},
    }


def main(argv: list[str]) -> None:
    mode, path = argv[1], argv[2]
    result = train_one_epoch(path) if mode == "train" else sharded_attribution(path)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv)
