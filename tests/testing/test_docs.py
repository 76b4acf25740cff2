"""Every ```python block of docs/testing.md is a test module: run them all in one project."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
TOML = re.compile(r"```toml\n(.*?)```", re.S)


def test_testing_page_samples_pass(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith(("PYTEST_XDIST", "MOSAIC_TEST_")):
            monkeypatch.delenv(name)
    page = (ROOT / "docs" / "testing.md").read_text()
    blocks = BLOCK.findall(page)
    assert len(blocks) == 4
    (config,) = TOML.findall(page)
    # The page's configuration, plus pytest-alembic switched off (see the page), no cache, and
    # the unused schemathesis and hypothesis plugins off (~1.7 s of imports).
    pytester.makefile(
        ".toml",
        pyproject=config
        + "pytest_alembic_enabled = false\n"
        + 'addopts = "-p no:cacheprovider -p no:schemathesis -p no:hypothesispytest"\n',
    )
    shutil.copy(ROOT / "alembic.ini", pytester.path / "alembic.ini")
    shutil.copytree(
        ROOT / "alembic", pytester.path / "alembic", ignore=shutil.ignore_patterns("__pycache__")
    )
    for i, code in enumerate(blocks):
        pytester.makepyfile(**{f"test_doc_{i}": code})
    result = pytester.runpytest_subprocess("-v", timeout=300)
    # register x2, notes x2, queue (postgresql only), migrations x2
    result.assert_outcomes(passed=7)
