"""`python -m trainer.verdict`: prints the verdict texts a workdir's event files hold."""

import subprocess
import sys

import pytest

from callbacks import TensorBoardWriter


def _run(*args):
    return subprocess.run([sys.executable, "-m", "trainer.verdict", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_prints_the_last_or_a_chosen_firing(tmp_path):
    writer = TensorBoardWriter(tmp_path)
    for step in (0, 40, 80):
        writer.write_texts(step, {"sanity/verdict": f"**Verdict at step {step}**\n| a |"})
    writer.close()
    result = _run("--workdir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "**Verdict at step 80**\n| a |\n"
    assert _run("--workdir", str(tmp_path), "--step", "40").stdout.startswith(
        "**Verdict at step 40**")
    every = _run("--workdir", str(tmp_path), "--all").stdout
    assert every.index("step 0") < every.index("step 40") < every.index("step 80")
    missing = _run("--workdir", str(tmp_path), "--step", "41")
    assert missing.returncode == 1
    assert missing.stderr.strip() == ("Error: No verdict at step 41; the run has verdicts at "
                                      "steps 0, 40, 80.")
    none = _run("--workdir", str(tmp_path / "nowhere"))
    assert none.returncode == 1 and "No workdir" in none.stderr
