"""Helpers for the host tests (a uniquely named module: ``conftest`` names are ambiguous)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.types import ASGIApp

from sqlmosaic import Mosaic

ASYNC_DRIVERS = {"asyncpg", "aiosqlite"}


#: Seconds any lifespan step may take.
LIFESPAN_TIMEOUT = 30.0


@asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Drive an app's ASGI lifespan (startup ... shutdown) the way a server does.

    httpx's ASGITransport sends no lifespan events; this speaks the protocol to the app itself,
    so FastAPI's and Starlette's own lifespan handling run. A failed startup raises
    RuntimeError with the app's message.
    """
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: Any) -> None:
        await outbox.put(dict(message))

    task: asyncio.Task[None] = asyncio.create_task(app(scope, receive, send))  # type: ignore[arg-type]
    await inbox.put({"type": "lifespan.startup"})
    started = await asyncio.wait_for(outbox.get(), LIFESPAN_TIMEOUT)
    if started["type"] != "lifespan.startup.complete":
        await asyncio.wait({task}, timeout=LIFESPAN_TIMEOUT)
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: the app re-raises after reporting the failure
        raise RuntimeError(f"startup failed: {started.get('message', started)}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        stopped = await asyncio.wait_for(outbox.get(), LIFESPAN_TIMEOUT)
        await asyncio.wait_for(task, LIFESPAN_TIMEOUT)
        assert stopped["type"] == "lifespan.shutdown.complete", stopped


@asynccontextmanager
async def client_for(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to ``app`` in-process, inside the app's lifespan."""
    async with (
        lifespan(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", trust_env=False
        ) as client,
    ):
        yield client


def assert_async_engine(mosaic: Mosaic) -> None:
    """The host's engine is async and uses asyncpg / aiosqlite (never psycopg or pysqlite)."""
    dialect = mosaic.engine.dialect
    assert dialect.is_async, dialect
    assert dialect.driver in ASYNC_DRIVERS, dialect.driver


async def assert_async_connection(mosaic: Mosaic) -> None:
    """A pooled connection of the host's engine is an asyncpg / aiosqlite connection object."""
    async with mosaic.session_factory() as session:
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        module = type(raw.driver_connection).__module__
    assert module.split(".")[0] in ASYNC_DRIVERS, module


def loopback_client(base_url: str = "", timeout: float = 10.0) -> httpx.AsyncClient:
    """A client for a server on 127.0.0.1: plain HTTP, no proxy or netrc from the environment.

    ``trust_env=False`` keeps an HTTP(S)_PROXY setting from routing loopback traffic, and with
    ``verify=False`` (no TLS here) no certificate bundle is loaded: building a default client
    takes ~50 ms of CPU, which a debug-mode event loop reports as a slow callback.
    """
    return httpx.AsyncClient(base_url=base_url, timeout=timeout, verify=False, trust_env=False)


_LISTENING = re.compile(rb"Uvicorn running on (http://127\.0\.0\.1:\d+)")


async def listening_url(process: asyncio.subprocess.Process) -> tuple[str, bytes]:
    """The base URL a uvicorn server started with port 0 listens on, read from its log line.

    With port 0 the kernel picks a free port when the server binds it, so no other process can
    take it first (a port found free beforehand and handed over could be gone by then).
    Returns the URL and the output read so far; ``process.communicate()`` gives the rest.
    The caller bounds the wait (``asyncio.timeout``).
    """
    seen = b""
    assert process.stdout is not None
    while True:
        line = await process.stdout.readline()
        if not line:
            raise AssertionError(f"the server exited before listening:\n{seen.decode()}")
        seen += line
        found = _LISTENING.search(line)
        if found:
            return found.group(1).decode(), seen
