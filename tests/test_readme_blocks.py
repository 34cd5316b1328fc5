"""Every python block of the README runs as pasted, each in a fresh interpreter from the
repository root, and prints what its `# -> ...` comment says."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # End-to-end: see README, Tests.

REPO = pathlib.Path(__file__).resolve().parent.parent
README = REPO / "README.md"
# Run in-process, with their printed output checked, by tests/test_readme_your_model.py.
YOUR_MODEL = README.read_text().split("\n## Your model\n", 1)[1].split("\n## ", 1)[0]


def blocks() -> list[tuple[int, str]]:
    """(line number, code) of every python block outside "Your model"."""
    text = README.read_text()
    found = []
    for match in re.finditer(r"```python\n(.*?)```", text, flags=re.S):
        if match.group(1) not in YOUR_MODEL:
            found.append((text[:match.start()].count("\n") + 1, match.group(1)))
    return found


BLOCKS = blocks()


def test_the_readme_has_blocks_to_run():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("line, code", BLOCKS, ids=[f"README.md:{n}" for n, _ in BLOCKS])
def test_block_runs_as_pasted(line, code, tmp_path):
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=600, env={**os.environ, "PYTHONHASHSEED": "0"})
    assert result.returncode == 0, f"README.md:{line}\n{result.stderr[-3000:]}"
    for expected in re.findall(r"# -> (.+)$", code, flags=re.M):
        assert expected.strip() in result.stdout, (line, expected, result.stdout[-2000:])
