"""The core packages import, and train, without TensorFlow."""

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_core_packages_do_not_import_tensorflow():
    code = (
        "import sys, attribution, callbacks, callbacks.base, trainer, trainer.train, "
        "trainer.__main__\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_verdict_command_reads_event_files_without_jax():
    """`callbacks` loads a module when one of its names is first used (every other test
    imports them), so reading a run's verdict starts no JAX: 0.3 s instead of about 2 s."""
    code = (
        "import sys, trainer.verdict, callbacks\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'flax')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
