"""Health checks answer 503 with the typed body when the database is down (they were 500s with
a traceback), and a host can replace the error body's shape. FastAPI and Starlette hosts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hosts_support import client_for
from starlette.applications import Starlette

from examples.fastapi_app import create_app as create_fastapi_app
from examples.starlette_app import create_app as create_starlette_app
from sqlmosaic import Mosaic, MosaicError, MosaicSettings
from sqlmosaic.integrations.fastapi import ErrorResponse, install_exception_handlers

FACTORIES = {"fastapi": create_fastapi_app, "starlette": create_starlette_app}


@pytest.fixture(params=sorted(FACTORIES))
def mosaic_app(request: pytest.FixtureRequest, mosaic_host: Mosaic) -> Any:
    return FACTORIES[request.param](mosaic_host)


@pytest.mark.parametrize("kind", sorted(FACTORIES))
async def test_health_is_503_with_the_typed_body_when_the_database_is_down(
    kind: str, refused_port: Callable[[], int]
) -> None:
    url = f"postgresql+asyncpg://app:s3cret-pw@127.0.0.1:{refused_port()}/app"
    app: FastAPI | Starlette = FACTORIES[kind](
        Mosaic(MosaicSettings.load(database_url=url, connect_timeout=2))
    )
    async with client_for(app) as api:
        response = await api.get("/health")
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert response.json() == {
        "error": "database_unavailable",
        "detail": "the database is temporarily unavailable; retry later",
    }
    assert "s3cret" not in response.text


async def test_health_is_200_when_the_database_answers(mosaic_client: httpx.AsyncClient) -> None:
    response = await mosaic_client.get("/health")
    assert response.status_code == 200, response.text


async def test_a_host_can_replace_the_error_body(mosaic_host: Mosaic) -> None:
    app = FastAPI()
    app.state.mosaic = mosaic_host
    seen: list[int] = []

    def body(exc: MosaicError, response: ErrorResponse) -> dict[str, Any]:
        seen.append(response.status)
        return {"detail": "Item not found" if response.status == 404 else "error"}

    install_exception_handlers(app, body=body)

    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> None:
        async with mosaic_host.unit_of_work() as uow:
            await uow.repository("accounts.users").get(item_id)

    async with client_for(app) as api:
        response = await api.get("/items/999999")
    assert response.status_code == 404
    assert response.json() == {"detail": "Item not found"}
    assert seen == [404]
