"""The bound zoo names, for each entry, the test that checks it: those tests exist."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs" / "zoo").glob("*.md"))
REFS = sorted(
    {ref for page in PAGES for ref in re.findall(r"tests/test_\w+\.py::test_\w+", page.read_text())}
)


def test_every_zoo_page_names_its_tests():
    for page in PAGES:
        assert re.search(r"tests/test_\w+\.py::test_\w+", page.read_text()), page.name


@pytest.mark.parametrize("ref", REFS)
def test_the_named_test_exists(ref):
    path, name = ref.split("::")
    assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), flags=re.M), ref
