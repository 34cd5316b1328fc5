"""The README's "Your model" snippets run as written, each in a fresh namespace."""

import contextlib
import io
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def section_blocks(heading: str) -> list[str]:
    text = README.read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


BLOCKS = section_blocks("Your model")
# What each block prints, as its comments say.
EXPECTED = ["(4, 28, 28, 1) ['ablation_cam', 'blur_ig', 'deconvnet', 'deeplift', "
            "'deeplift_shap', "
            "'eigen_cam', 'feature_ablation', 'grad_cam', 'grad_cam_plus_plus', 'gradient', "
            "'gradient_shap', 'gradient_x_input', 'guided_backprop', 'guided_grad_cam', "
            "'guided_ig', "
            "'hires_cam', 'integrated_gradients', 'kernel_shap', 'layer_cam', 'lime', 'lrp', "
            "'occlusion', 'rise', 'score_cam', 'smoothgrad', 'vargrad', 'xgrad_cam', 'xrai']",
            "['batch_stats', 'params']",
            "(4, 28, 28, 1) False", "(4, 28, 28, 1)", "2 firings"]


def test_one_snippet_per_model_kind():
    assert len(BLOCKS) == len(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(EXPECTED)))
def test_snippet_runs_as_written(index):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(BLOCKS[index], f"README.md:your-model-{index}", "exec"), {})
    assert EXPECTED[index] in out.getvalue(), out.getvalue()
