"""``--mosaic-detect-blocking``: a blocking call on the event loop fails its test (pytester runs).

In process (``runpytest``, fast): the inner run has its own plugin instances. The outer run's
detection would see the inner run's loop, so these outer tests opt out of it with a bare
``@pytest.mark.mosaic_allow_blocking`` (the allow-list mechanism under test).
"""

from __future__ import annotations

import os

import pytest

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
addopts = -p no:cacheprovider -p no:xdist -p no:pytest_alembic
"""

TESTS = """
import asyncio
import os
import time

import pytest


def helper_that_sleeps():
    time.sleep(0.001)


async def test_sleep_on_the_loop():
    time.sleep(0.001)


async def test_file_read_on_the_loop(tmp_path):
    path = tmp_path / "f.txt"
    await asyncio.to_thread(path.write_text, "x")
    with open(path) as f:
        f.read()


async def test_swallowed_still_fails():
    try:
        helper_that_sleeps()
    except Exception:
        pass


async def test_sleep_in_a_thread_is_fine():
    await asyncio.to_thread(time.sleep, 0.001)
    await asyncio.sleep(0)


def test_sync_code_may_block():
    time.sleep(0.001)


@pytest.mark.mosaic_allow_blocking("test_blocking.py:helper_that_sleeps")
async def test_allowed_by_marker():
    helper_that_sleeps()


@pytest.mark.mosaic_allow_blocking
async def test_unchecked():
    time.sleep(0.001)
"""

BLOCKED = {
    "test_sleep_on_the_loop": (
        "  - time.sleep at test_blocking.py:* in test_sleep_on_the_loop: time.sleep(0.001)"
    ),
    "test_file_read_on_the_loop": (
        "  - io.TextIOWrapper.read at test_blocking.py:* in test_file_read_on_the_loop: f.read()"
    ),
    "test_swallowed_still_fails": (
        "  - time.sleep at test_blocking.py:* in helper_that_sleeps: time.sleep(0.001)"
    ),
}

pytestmark = pytest.mark.mosaic_allow_blocking  # see the module docstring


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in list(os.environ):
        if name.startswith(("PYTEST_XDIST", "MOSAIC_TEST_")):
            monkeypatch.delenv(name)
    pytester.makefile(".ini", pytest=INI)
    pytester.makepyfile(test_blocking=TESTS)
    return pytester


def test_off_by_default(project: pytest.Pytester) -> None:
    result = project.runpytest("--mosaic-backends", "sqlite")
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(["*detect_blocking=False*"])


def test_option_fails_each_blocking_test_saying_what_and_where(project: pytest.Pytester) -> None:
    result = project.runpytest("--mosaic-backends", "sqlite", "--mosaic-detect-blocking", "-rf")
    result.assert_outcomes(passed=4, failed=3)
    result.stdout.fnmatch_lines(["*detect_blocking=True*"])
    for name, where in BLOCKED.items():
        result.stdout.fnmatch_lines(
            [
                "*--mosaic-detect-blocking: 1 blocking call(s) on the event loop during call:",
                where,
            ]
        )
        result.stdout.fnmatch_lines([f"FAILED test_blocking.py::{name} - *"])


def test_ini_switch_and_allow_list(project: pytest.Pytester) -> None:
    project.makefile(
        ".ini",
        pytest=INI
        + "mosaic_detect_blocking = true\n"
        + "mosaic_blocking_allow =\n    test_blocking.py:test_sleep_on_the_loop,other\n",
    )
    result = project.runpytest("--mosaic-backends", "sqlite", "-rf")
    result.assert_outcomes(passed=5, failed=2)
    assert "test_sleep_on_the_loop" not in result.stdout.str().split("short test summary")[-1]


def test_bad_allow_entry_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makefile(
        ".ini", pytest=INI + "mosaic_detect_blocking = true\nmosaic_blocking_allow = nocolon\n"
    )
    result = project.runpytest("--mosaic-backends", "sqlite")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*mosaic_blocking_allow: expected FILE_SUFFIX:FUNCTION*"])
