"""docs/hosts.md "Testing a host": its conftest.py and test file, run as a project of their own
(pytester, in process) on both backends: ``mosaic_client`` over ``mosaic_app``, and
``mosaic_seed`` committing rows into the template once, visible in every test.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "hosts.md"
TITLED = re.compile(r'```python title="([^"]+)"\n(.*?)```', re.DOTALL)

INI = f"""
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
filterwarnings = error
addopts = -p no:cacheprovider -p no:xdist -p no:pytest_alembic
pythonpath = {ROOT}
mosaic_detect_blocking = true
"""

# In process: the inner run's loop would trip this run's own blocking detection.
pytestmark = [pytest.mark.postgres, pytest.mark.mosaic_allow_blocking]


def test_the_testing_section_has_a_conftest_and_a_test_file() -> None:
    files = dict(TITLED.findall(PAGE.read_text()))
    assert set(files) == {"tests/conftest.py", "tests/test_users.py"}
    assert "def mosaic_app(" in files["tests/conftest.py"]
    assert "def mosaic_seed(" in files["tests/conftest.py"]


def test_the_testing_section_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith(("PYTEST_XDIST", "MOSAIC_TEST_")):
            monkeypatch.delenv(name)
    pytester.makefile(".ini", pytest=INI)
    shutil.copy(ROOT / "alembic.ini", pytester.path / "alembic.ini")
    shutil.copytree(
        ROOT / "alembic", pytester.path / "alembic", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name, code in TITLED.findall(PAGE.read_text()):
        target = pytester.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(code)
    result = pytester.runpytest("-v", "tests")
    result.assert_outcomes(passed=6)  # 3 tests x (postgresql, sqlite)
    result.stdout.fnmatch_lines(["*test_each_test_starts_from_the_seed?postgresql? PASSED*"])
    result.stdout.fnmatch_lines(["*test_each_test_starts_from_the_seed?sqlite? PASSED*"])
