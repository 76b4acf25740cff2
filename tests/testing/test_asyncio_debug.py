"""``--mosaic-asyncio-debug``: asyncio problems fail the test that causes them (pytester runs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

INI = f"""
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
# the schemathesis and hypothesis plugins are unused here: ~1.7 s of imports per run
addopts = -p no:cacheprovider -p no:schemathesis -p no:hypothesispytest
pytest_alembic_enabled = false
mosaic_alembic_ini = {Path(__file__).resolve().parents[2] / "alembic.ini"}
"""

TESTS = """
import asyncio
import socket
import time

import pytest


async def test_loop_is_in_debug_mode(request):
    from sqlmosaic.testing import get_options

    options = get_options(request.config)
    loop = asyncio.get_running_loop()
    assert loop.get_debug() is options.asyncio_debug
    if options.asyncio_debug:
        assert loop.slow_callback_duration == options.slow_callback_duration


async def test_blocks_the_loop():
    time.sleep(0.4)


@pytest.mark.mosaic_slow_callback_duration(1.0)
async def test_blocks_with_permission():
    time.sleep(0.4)


async def test_blocks_briefly():
    time.sleep(0.05)
    await asyncio.sleep(0)


async def _helper():
    return 1


async def test_never_awaited():
    _helper()


async def test_resource_warning():
    sock = socket.socket()
    del sock


async def test_exception_in_callback():
    asyncio.get_running_loop().call_soon(lambda: 1 / 0)
    await asyncio.sleep(0.01)


async def test_database_fixtures_are_clean(mosaic_backend, mosaic_session, mosaic_host):
    async with mosaic_host.transaction() as session:
        await session.connection()


def test_sync():
    pass
"""

SLOW = "asyncio WARNING: Executing <*> took 0.4* seconds"
BAD = {
    "test_never_awaited": "*RuntimeWarning: coroutine '_helper' was never awaited*",
    "test_resource_warning": "*ResourceWarning: unclosed <socket.socket*",
    "test_exception_in_callback": (
        "*asyncio ERROR: Exception in callback*[[]ZeroDivisionError: division by zero[]]"
    ),
}


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in list(os.environ):
        if name.startswith(("PYTEST_XDIST", "MOSAIC_TEST_")):
            monkeypatch.delenv(name)
    pytester.makefile(".ini", pytest=INI)
    pytester.makepyfile(test_debug=TESTS)
    return pytester


def test_without_the_option_nothing_is_caught(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("--mosaic-backends", "sqlite", timeout=300)
    result.assert_outcomes(passed=9)


def test_each_problem_fails_its_test_and_slow_callbacks_are_reported(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest_subprocess(
        "--mosaic-backends", "sqlite", "--mosaic-asyncio-debug", "-rf", timeout=300
    )
    result.assert_outcomes(passed=6, failed=3)
    for name, pattern in BAD.items():
        result.stdout.fnmatch_lines([f"*{pattern}*"])
        result.stdout.fnmatch_lines([f"FAILED test_debug.py::{name} - *"])
    summary = result.stdout.str().split("short test summary")[-1]
    assert "test_blocks_the_loop" not in summary  # wall-clock: reported, not failed
    result.stdout.fnmatch_lines(
        [
            "*sqlmosaic: slow callbacks (reported, not failed)*",
            f"  test_debug.py::test_blocks_the_loop (call): {SLOW}",
        ]
    )
    assert "test_blocks_with_permission (call)" not in result.stdout.str()


def test_failing_on_slow_callbacks_is_opt_in_and_the_threshold_configurable(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest_subprocess(
        "--mosaic-backends",
        "sqlite",
        "--mosaic-asyncio-debug",
        "--mosaic-fail-slow-callbacks",
        "-rf",
        timeout=300,
    )
    result.assert_outcomes(passed=5, failed=4)
    result.stdout.fnmatch_lines([f"*{SLOW}*", "FAILED test_debug.py::test_blocks_the_loop - *"])
    project.makefile(
        ".ini",
        pytest=INI
        + "mosaic_asyncio_debug = true\nmosaic_fail_slow_callbacks = true\n"
        + "mosaic_slow_callback_duration = 60\n",
    )
    result = project.runpytest_subprocess("--mosaic-backends", "sqlite", timeout=300)
    result.assert_outcomes(passed=6, failed=3)  # 0.4 s is far under the threshold
    result.stdout.fnmatch_lines(["*sqlmosaic: *asyncio_debug=True*"])
