"""A real TensorBoard server, started on loopback, serves every tag the trainer logged."""

import io
import json
import pathlib
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
from PIL import Image

from tests.trainer.test_train import CONFIG_DIR, load_config
from trainer import train

pytestmark = pytest.mark.slow  # End-to-end: see README, Tests.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(base: str, path: str, **query) -> bytes:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def _served_steps(base: str, tag: str, expected: list[int], timeout: float = 60) -> list[int]:
    """The steps TensorBoard serves for an image tag, once they reach `expected` or time is up.

    TensorBoard loads event files in a background thread: a tag can be served before all of its
    events are read.
    """
    deadline = time.monotonic() + timeout
    while True:
        entries = json.loads(_get(base, "/data/plugin/images/images", run=RUN, tag=tag,
                                  sample=0))
        steps = [e["step"] for e in entries]
        if steps == expected or time.monotonic() > deadline:
            return steps
        time.sleep(0.5)


RUN = "cnn_gap"
STEPS_PER_EPOCH = 8  # The tiny variant: 512 digits, batch 64.


@pytest.fixture(scope="module")
def trained_workdir(tiny_run):
    """A tiny cnn_gap run (every method applies) with the attribution callback, 2 epochs: the
    session's, which tests/trainer/test_train.py checks too."""
    workdir = tiny_run("cnn_gap.py")["workdir"]
    assert workdir.name == RUN  # TensorBoard names the run after its folder.
    return workdir, load_config(CONFIG_DIR / "cnn_gap.py")


@pytest.fixture(scope="module")
def tensorboard_url(trained_workdir):
    """TensorBoard started with the command the trainer prints."""
    workdir, config = trained_workdir
    command = train.tensorboard_command(config, str(workdir), STEPS_PER_EPOCH).split()
    assert command[0] == "tensorboard"
    port = _free_port()
    exe = pathlib.Path(sys.executable).with_name("tensorboard")
    server = subprocess.Popen(
        [str(exe), *command[1:], "--port", str(port), "--host", "127.0.0.1",
         "--load_fast", "false", "--reload_interval", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                tags = json.loads(_get(base, "/data/plugin/images/tags"))
                if tags.get(RUN):
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                output = server.stdout.read().decode(errors="replace") if server.stdout else ""
                pytest.fail(f"TensorBoard did not serve the run: {output[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_every_tag_every_method_every_firing(tensorboard_url, trained_workdir):
    _, config = trained_workdir
    methods = [m.strip() for m in config.attribution.methods.split(",")]
    # Log-spaced: the untrained model, steps 1, 2, 4, then the epoch ends (global steps).
    firings = [0, 1, 2, 4, 8, 16]
    runs = json.loads(_get(tensorboard_url, "/data/runs"))
    assert runs == [RUN]  # Named after its folder, not ".".

    image_tags = json.loads(_get(tensorboard_url, "/data/plugin/images/tags"))[RUN]
    expected = {"attributions/overview", "drift/curves"}
    expected |= {f"methods/{m}" for m in methods}
    expected |= {f"evolution/{m}" for m in methods}
    assert expected <= set(image_tags), sorted(expected - set(image_tags))
    # TensorBoard orders cards by tag: the overview comes first.
    assert sorted(image_tags)[0] == "attributions/overview"

    for tag in ["attributions/overview", *(f"methods/{m}" for m in methods),
                *(f"evolution/{m}" for m in methods)]:
        assert _served_steps(tensorboard_url, tag, firings) == firings, tag

    scalar_tags = set(json.loads(_get(tensorboard_url, "/data/plugin/scalars/tags"))[RUN])
    expected_scalars = {"timing/attribution_ms", "probes/confidence", "loss/train",
                        "accuracy/eval"}
    expected_scalars |= {f"drift/{m}/to_previous" for m in methods}
    assert expected_scalars <= scalar_tags, sorted(expected_scalars - scalar_tags)
    # Loss and accuracy sort before timings and sanity scores.
    order = sorted(scalar_tags)
    last_training = max(order.index(t) for t in ("loss/train", "accuracy/eval"))
    assert all(order.index(t) > last_training for t in scalar_tags
               if t.startswith(("timing/", "sanity/")))


def test_images_decode_as_png(tensorboard_url, trained_workdir):
    _, config = trained_workdir
    num_probes = 10 * config.attribution.probes_per_class
    for tag in ("attributions/overview", "evolution/integrated_gradients"):
        entries = json.loads(_get(tensorboard_url, "/data/plugin/images/images", run=RUN,
                                  tag=tag, sample=0))
        png = _get(tensorboard_url, "/data/plugin/images/individualImage?" + entries[-1]["query"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        # One row of 28x28 cells (scaled by 2) per probe digit, plus a header band.
        assert image.shape[0] >= num_probes * 56
        assert image.std() > 10  # not a blank image
