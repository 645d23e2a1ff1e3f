"""The fast tier lists tests by name (tests/tiers.py): a renamed test would silently leave the tier."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from tiers import FAST_FILES, FAST_TESTS

pytestmark = pytest.mark.fast

HERE = Path(__file__).parent


@pytest.mark.parametrize("file", sorted(FAST_FILES | FAST_TESTS.keys()))
def test_every_test_the_fast_tier_names_exists(file):
    tree = ast.parse((HERE / file).read_text(encoding="utf-8"))
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}
    assert defined, f"{file} has no tests"
    assert FAST_TESTS.get(file, set()) <= defined, f"{file}: no such test {FAST_TESTS[file] - defined}"
