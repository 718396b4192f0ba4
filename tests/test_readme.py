"""Every ```python block of README.md runs, so the README cannot drift from the code.

The blocks are read as a reader would run them: in order, in one session. Block ``i`` is
executed after blocks ``0..i-1`` in a fresh namespace, so a failure names its block.
"""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.M | re.S)


def test_the_readme_has_python_examples():
    assert BLOCKS, "README.md has no ```python block"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index):
    namespace = {"__name__": "readme"}
    for i, block in enumerate(BLOCKS[: index + 1]):
        exec(compile(block, f"README.md, python block {i}", "exec"), namespace)
