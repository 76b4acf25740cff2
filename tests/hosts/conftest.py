"""Fixtures for the host tests: example apps on the shipped ``mosaic_*`` fixtures, an ASGI
lifespan driver, and asyncio debug mode around every test (its problem reports fail the test;
slow callbacks do not: wall-clock. Blocking calls are caught by --mosaic-detect-blocking).

Apps are built in sync fixtures (building a FastAPI app is CPU work that must not run inside
a loop step under debug mode); they run on the ``mosaic_host`` fixture (a started host whose
sessions are savepoint-isolated), over every backend ``mosaic_backend`` names.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the example hosts live in ./examples, which is not installed
    sys.path.append(str(ROOT))

import httpx  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from hosts_support import client_for  # noqa: E402
from starlette.applications import Starlette  # noqa: E402

from examples.fastapi_app import create_app as create_fastapi_app  # noqa: E402
from examples.starlette_app import create_app as create_starlette_app  # noqa: E402
from sqlmosaic import Mosaic  # noqa: E402


class _AsyncioProblems(logging.Handler):
    """asyncio's debug-mode problem reports: pending tasks destroyed, exceptions never
    retrieved, exceptions in callbacks. Slow-callback records are wall-clock measurements that a
    loaded machine produces for innocent code: ignored here (the shipped plugin reports them)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if _SLOW.match(message) is None:
            self.reports.append(message)


_SLOW = re.compile(r"^Executing .* took \d+(?:\.\d+)? seconds$", re.DOTALL)


@pytest.fixture(autouse=True)
def collect_garbage() -> Iterator[None]:
    """After each test (outside the event loop): finalizers of anything left unclosed run now,
    so a ResourceWarning or never-awaited coroutine fails THIS test (warnings are errors)."""
    yield
    gc.collect()


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def asyncio_debug(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Every host test runs on a debug-mode loop and fails if asyncio reports a problem.

    With ``--mosaic-asyncio-debug`` the shipped plugin does this for the whole suite (and also
    fails on never-awaited coroutines and ResourceWarnings); without it, this fixture does it
    for this directory. pytest's ``filterwarnings = error`` covers the warnings here.
    """
    if request.config.pluginmanager.has_plugin("sqlmosaic.asyncio_debug"):
        yield
        return
    loop = asyncio.get_running_loop()
    was = loop.get_debug()
    collector = _AsyncioProblems()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(collector)
    loop.set_debug(True)
    try:
        yield
    finally:
        loop.set_debug(was)
        asyncio_logger.removeHandler(collector)
    assert not collector.reports, "asyncio reported problems:\n" + "\n".join(collector.reports)


@pytest.fixture
def fastapi_app(mosaic_host: Mosaic) -> FastAPI:
    return create_fastapi_app(mosaic_host)


@pytest.fixture
def starlette_app(mosaic_host: Mosaic) -> Starlette:
    return create_starlette_app(mosaic_host)


@pytest_asyncio.fixture(loop_scope="session")
async def api(fastapi_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the FastAPI example on the isolated ``mosaic_host``."""
    async with client_for(fastapi_app) as client:
        yield client


@pytest.fixture
def caplog_info(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="sqlmosaic"):
        yield caplog
