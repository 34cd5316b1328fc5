"""Data parallelism: 4 forced CPU devices against 1, and two processes under jax.distributed.

Each test runs a fresh interpreter: XLA fixes the CPU device count when JAX starts.
"""

import glob
import json
import os
import pathlib
import re
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import serialization

from configs import cnn_gap
from trainer import train

pytestmark = pytest.mark.slow  # End-to-end: see README, Tests.

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DEVICES = 4


def _env(devices: int) -> dict[str, str]:
    # Two lanes per pass, as on the 2-core machine (the attribution worker sets its own). The
    # suite's XLA flags (tests/conftest.py) stay.
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
    env = dict(os.environ, JAX_PLATFORMS="cpu", ATTRIBUTION_CPU_LANES="2",
               XLA_FLAGS=flags.strip())
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def _worker(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "tests.trainer.parallel_worker", *args],
                          cwd=REPO_ROOT, env=_env(DEVICES), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def test_one_epoch_on_four_devices_matches_one_device(tmp_path):
    result = _worker("train", str(tmp_path))
    assert result["devices"] == DEVICES
    # The state really was replicated over all four devices, and over one with num_devices=1.
    assert result["param_devices_0"] == DEVICES and result["param_devices_1"] == 1
    one, four = result["logs_1"], result["logs_0"]
    assert set(one) == {"train_loss", "train_accuracy", "eval_loss", "eval_accuracy"}
    for key in one:
        np.testing.assert_allclose(four[key], one[key], rtol=1e-5, err_msg=key)
    # Eight optimizer steps later the parameters still agree to float rounding.
    assert result["max_param_diff"] < 1e-5
    assert "batch_size 30" in result["bad_batch_error"]
    assert "4 devices" in result["bad_batch_error"]


@pytest.fixture(scope="module")
def sharded_maps(trained_cnn_gap, digits, tmp_path_factory):
    """Every CNN-GAP method on 6 digits (padded to 8 for 4 devices), sharded and not."""
    _, variables = trained_cnn_gap
    images, labels = digits
    path = tmp_path_factory.mktemp("parallel") / "probes.npz"
    blob = serialization.msgpack_serialize(jax.device_get(variables))
    np.savez(path, images=images[:6], labels=labels[:6],
             variables=np.frombuffer(blob, np.uint8))
    return _worker("attribution", str(path))


def test_sharded_attribution_equals_single_device(sharded_maps):
    expected = sorted(train.attribution_methods(cnn_gap.get_config("tiny").attribution))
    assert sharded_maps["devices"] == DEVICES
    assert sharded_maps["methods"] == expected
    for name in expected:
        assert sharded_maps["shapes"][name] == [6, 28, 28, 1], name  # Padding dropped.
        scale = sharded_maps["max_abs"][name]
        assert scale > 0, name
        assert sharded_maps["max_abs_diff"][name] <= 1e-5 * scale, name


def test_sharded_attribution_splits_the_work(sharded_maps):
    # XLA's cost analysis of a partitioned program counts one device's share: here that of 8
    # padded probes over 4 devices, against 6 probes on one device.
    share = 8 / 6 / DEVICES
    assert "smoothgrad" in sharded_maps["stochastic"]  # Split too: one key per probe.
    for name, single in sharded_maps["flops_single"].items():
        ratio = sharded_maps["flops_per_device"][name] / single
        assert ratio <= 1.05 * share, (name, ratio, share)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_and_only_process_0_writes(tmp_path):
    workdir = tmp_path / "run"
    args = [
        sys.executable, "-m", "trainer", "--config", "configs/mlp.py:tiny",
        f"--workdir={workdir}", f"--coordinator_address=127.0.0.1:{_free_port()}",
        "--num_processes=2", "--config.num_epochs=1", "--config.data.max_train_examples=128",
        "--config.batch_size=32", "--config.attribution.methods=gradient,smoothgrad",
        "--config.sanity.enabled=False",
    ]
    procs = [subprocess.Popen([*args, f"--process_id={i}"], cwd=REPO_ROOT, env=_env(2),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    try:
        outputs = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for i, (p, out) in enumerate(zip(procs, outputs, strict=True)):
        assert p.returncode == 0, f"process {i}:\n{out[-3000:]}"
    # Both processes ran the same global computation: the same epoch losses.
    losses = [re.findall(r"train loss (\S+) .* eval loss (\S+)", out) for out in outputs]
    assert losses[0] and losses[0] == losses[1]
    # Event files carry the writer's pid: only process 0's.
    events = glob.glob(str(workdir / "events.out.tfevents.*"))
    assert events and all(f".{procs[0].pid}." in os.path.basename(e) for e in events), events
    assert (workdir / "probes.json").exists()
    assert (workdir / "checkpoints" / "1").is_dir()
