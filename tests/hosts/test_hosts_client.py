"""The shipped ``mosaic_client`` fixture over a ``mosaic_app`` defined here, for both example
hosts (FastAPI and Starlette) and both backends: requests run on the test's isolated database.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from examples.fastapi_app import create_app as create_fastapi_app
from examples.starlette_app import create_app as create_starlette_app
from sqlmosaic import Mosaic


@pytest.fixture(params=["fastapi", "starlette"])
def mosaic_app(request: pytest.FixtureRequest, mosaic_host: Mosaic) -> object:
    """What a project's conftest.py defines: the app under test, on the isolated host."""
    if request.param == "fastapi":
        return create_fastapi_app(mosaic_host)
    return create_starlette_app(mosaic_host)


async def test_requests_run_on_the_tests_isolated_database(
    mosaic_client: httpx.AsyncClient, mosaic_session: AsyncSession, mosaic_app: object
) -> None:
    created = await mosaic_client.post("/users", json={"email": "c@example.com", "name": "C"})
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]

    read = await mosaic_client.get(f"/users/{user_id}")
    assert read.status_code == 200
    assert read.json()["email"] == "c@example.com"

    # The app's committed unit of work is visible on the test's own connection: the same
    # transaction, rolled back after the test (nothing reaches the session database).
    connection = await mosaic_session.connection()
    emails = (await connection.execute(text('SELECT email FROM "user"'))).scalars()
    assert list(emails) == ["c@example.com"]

    missing = await mosaic_client.get("/users/999999")
    assert missing.status_code == 404


async def test_the_lifespan_ran_and_left_the_fixture_host_running(
    mosaic_client: httpx.AsyncClient, mosaic_app: object, mosaic_host: Mosaic
) -> None:
    assert mosaic_app.state.mosaic is mosaic_host  # type: ignore[attr-defined]
    assert mosaic_host.running
    response = await mosaic_client.get("/users")
    assert response.status_code == 200
    assert response.json()["items"] == []  # the previous test's user was rolled back
