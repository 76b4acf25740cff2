"""The FastAPI example behind a real uvicorn server on a loopback port, on a fresh migrated
database of each backend: once in-process (``uvicorn.Server`` in a task), once as the process
``scripts/run`` execs (``python -m examples.fastapi_app``), stopped with SIGINT. Bounded."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from hosts_support import (
    assert_async_connection,
    assert_async_engine,
    listening_url,
    loopback_client,
)

from examples.fastapi_app import create_app
from sqlmosaic import Mosaic, MosaicSettings

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0
SHUTDOWN_TIMEOUT = 30.0


@pytest.fixture
def server(mosaic_fresh_url: str) -> uvicorn.Server:
    """A uvicorn server for the example app on its OWN host (it starts and disposes it).

    Built outside the event loop: settings, plugin imports and uvicorn's ``Config.load``
    (protocol imports, app factory) are sync work.
    """
    host = Mosaic(MosaicSettings.load(database_url=mosaic_fresh_url))
    host.load()
    config = uvicorn.Config(
        create_app(host), host="127.0.0.1", port=0, log_config=None, lifespan="on"
    )
    config.load()
    return uvicorn.Server(config)


@asynccontextmanager
async def serving(server: uvicorn.Server) -> AsyncIterator[str]:
    """Run ``server`` in a task; yield its base URL; stop it (graceful) and wait, bounded."""
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            while not server.started:
                if task.done():
                    task.result()  # startup failed: raise its error
                    raise RuntimeError("uvicorn stopped during startup")
                await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, SHUTDOWN_TIMEOUT)


async def _crud(base_url: str) -> None:
    async with loopback_client(base_url) as api:
        user = await api.post("/users", json={"email": "net@example.com", "name": "Net"})
        assert user.status_code == 201, user.text
        user_id = user.json()["id"]
        assert (await api.get(f"/users/{user_id}")).json()["email"] == "net@example.com"
        dup = await api.post("/users", json={"email": "net@example.com", "name": "Twice"})
        assert dup.status_code == 409
        project = (await api.post("/projects", json={"name": "Wire"})).json()
        for priority in (1, 3, 2):
            task = await api.post(
                "/tasks",
                json={"project_id": project["id"], "title": f"p{priority}", "priority": priority},
            )
            assert task.status_code == 201
        first = await api.get("/tasks", params={"sort": "-priority", "limit": 2})
        assert [t["priority"] for t in first.json()["items"]] == [3, 2]
        rest = await api.get(
            "/tasks", params={"sort": "-priority", "limit": 2, "after": first.json()["next_cursor"]}
        )
        assert [t["priority"] for t in rest.json()["items"]] == [1]
        renamed = await api.patch(f"/users/{user_id}", json={"name": "Renamed"})
        assert renamed.json()["name"] == "Renamed"
        assert (await api.get("/tasks", params={"sort": "colour"})).json()["field"] == "colour"
        assert (await api.delete(f"/users/{user_id}")).status_code == 204
        assert (await api.get(f"/users/{user_id}")).status_code == 404


async def test_crud_through_a_real_uvicorn_server(
    server: uvicorn.Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="sqlmosaic")
    async with serving(server) as base_url:
        app = server.config.app
        assert isinstance(app, FastAPI)
        host: Mosaic = app.state.mosaic
        assert host.running
        assert_async_engine(host)
        await assert_async_connection(host)
        await _crud(base_url)
    assert not host.running  # the lifespan stopped the host it started ...
    assert not host.database.connected
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("engine disposed for") for m in messages)  # ... and disposed it
    assert any(m.startswith("sqlmosaic host started: plugins: accounts 0.1.0") for m in messages)


async def test_the_main_job_server_stops_cleanly_on_sigint(mosaic_fresh_url: str) -> None:
    """What ``scripts/run`` execs, on a fresh database; Ctrl-C (SIGINT) ends it with status 0.
    With MOSAIC_ASYNCIO_DEBUG=1 its loop really runs in debug mode (uvicorn.run ignores
    PYTHONASYNCIODEBUG). PORT=0: the server binds a port the kernel picks and logs it."""
    env = {
        **os.environ,
        "DATABASE_URL": mosaic_fresh_url,
        "PORT": "0",
        "MOSAIC_ASYNCIO_DEBUG": "1",
    }
    env.pop("HOST", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        "-m",
        "examples.fastapi_app",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    started = b""
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            base_url, started = await listening_url(process)
        async with asyncio.timeout(STARTUP_TIMEOUT), loopback_client(timeout=5) as probe:
            while True:
                assert process.returncode is None, "the server exited during startup"
                try:
                    if (await probe.get(f"{base_url}/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        await _crud(base_url)
        process.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(process.communicate(), SHUTDOWN_TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = (started + output).decode()
    assert process.returncode == 0, log
    assert "sqlmosaic host started: plugins: accounts 0.1.0, tasks 0.1.0" in log
    assert "asyncio debug mode is on" in log
    assert "Uvicorn running on http://127.0.0.1:" in log
    assert "engine disposed for" in log
    assert "Application shutdown complete" in log
    assert "Traceback" not in log
