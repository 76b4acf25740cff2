"""The FastAPI/Starlette integrations' read-only dependencies on real replicas: they route like
``mosaic.transaction(read_only=True)`` (a replica, round-robin), while the plain request session
stays on the primary. In-process over httpx's ASGITransport, lifespan driven by asgi-lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import Depends, FastAPI, Request
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from mosaic_accounts import User, UserRepository
from sqlmosaic import Mosaic, MosaicSettings
from sqlmosaic.integrations.fastapi import (
    ReadOnlySessionDep,
    SessionDep,
    install_exception_handlers,
    mosaic_lifespan,
    read_only_transaction,
    repository_dependency,
)

from .conftest import Cluster

pytestmark = pytest.mark.parametrize("mosaic_backend", ["postgresql"], indirect=True)

ReadUsers = Annotated[
    UserRepository, Depends(repository_dependency(UserRepository, read_only=True))
]


async def where(session: AsyncSession) -> dict[str, Any]:
    connection = await session.connection()
    row = (await connection.execute(text("SELECT pg_is_in_recovery(), inet_server_port()"))).one()
    return {"replica": bool(row[0]), "port": int(row[1])}


def build_app(mosaic: Mosaic) -> FastAPI:
    app = FastAPI(lifespan=mosaic_lifespan(mosaic))
    install_exception_handlers(app)

    @app.get("/read-only")
    async def read_only(session: ReadOnlySessionDep) -> dict[str, Any]:
        return await where(session)

    @app.get("/request-session")
    async def request_session(session: SessionDep) -> dict[str, Any]:
        return await where(session)

    @app.get("/users/count")
    async def count_users(users: ReadUsers) -> dict[str, Any]:
        return {"count": await users.count(), **await where(users.session)}

    @app.get("/starlette-style")
    async def starlette_style(request: Request) -> dict[str, Any]:
        async with read_only_transaction(request) as session:
            return await where(session)

    @app.post("/read-only/users")
    async def write_on_read_only(users: ReadUsers) -> dict[str, Any]:
        await users.add(User(email="ro@example.com", name="RO"))
        return {}

    return app


@pytest.fixture
async def client(cluster: Cluster, mosaic_backend: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = MosaicSettings.load(
        database_url=cluster.primary_url, read_replica_urls=",".join(cluster.replica_urls())
    )
    app = build_app(Mosaic(settings))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", trust_env=False
        ) as http,
    ):
        yield http


async def test_read_only_dependencies_go_to_the_replicas(
    client: httpx.AsyncClient, cluster: Cluster
) -> None:
    replica_ports = {replica.server.port for replica in cluster.replicas}
    seen = [(await client.get(path)).json() for path in ["/read-only"] * 2]
    seen += [(await client.get("/starlette-style")).json()]
    counted = (await client.get("/users/count")).json()
    assert all(s["replica"] for s in seen), seen
    assert {s["port"] for s in seen} == replica_ports  # round-robin over both
    assert counted["replica"] is True
    assert counted["port"] in replica_ports
    assert isinstance(counted["count"], int)


async def test_the_request_session_stays_on_the_primary(
    client: httpx.AsyncClient, cluster: Cluster
) -> None:
    for _ in range(3):
        assert (await client.get("/request-session")).json() == {
            "replica": False,
            "port": cluster.primary.port,
        }


async def test_a_write_through_a_read_only_dependency_is_refused(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/read-only/users")
    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"  # typed body, no traceback
    assert "ro@example.com" not in response.text
