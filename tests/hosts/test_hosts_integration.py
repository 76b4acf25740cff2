"""``sqlmosaic.integrations``: lifespan ownership and logging, error mapping (404/409/400/503/500),
list-parameter parsing; plus the rule that importing ``sqlmosaic`` imports no web framework."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from hosts_support import client_for, lifespan
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mosaic_accounts import UserRepository
from mosaic_tasks import TaskRepository
from sqlmosaic import (
    ConfigurationError,
    DatabaseUnavailableError,
    InvalidQueryError,
    Mosaic,
    MosaicSettings,
    RetriesExhaustedError,
    hookimpl,
)
from sqlmosaic.integrations.fastapi import (
    ListParams,
    SessionDep,
    install_exception_handlers,
    list_query,
    mosaic_lifespan,
    repository_dependency,
)
from sqlmosaic.integrations.starlette import exception_handlers, get_mosaic
from sqlmosaic.integrations.starlette import mosaic_lifespan as starlette_lifespan

Users = Annotated[UserRepository, Depends(repository_dependency(UserRepository))]


def _unreachable_host(port: int, password: str = "s3cret-pw") -> Mosaic:
    url = f"postgresql+asyncpg://app:{password}@127.0.0.1:{port}/app"
    return Mosaic(MosaicSettings.load(database_url=url, connect_timeout=2))


def test_importing_sqlmosaic_imports_no_web_framework() -> None:
    code = (
        "import sys, sqlmosaic, sqlmosaic.integrations\n"
        "bad = [m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_lifespan_starts_logs_and_disposes_a_host_it_owns(
    caplog_info: pytest.LogCaptureFixture, refused_port: Callable[[], int]
) -> None:
    host = _unreachable_host(refused_port())
    app = FastAPI(lifespan=mosaic_lifespan(host))
    async with lifespan(app):
        assert host.running
        assert app.state.mosaic is host
        started = [r.getMessage() for r in caplog_info.records if "host started" in r.message]
        assert len(started) == 1
        assert "accounts 0.1.0" in started[0]
        assert "tasks 0.1.0" in started[0]
        assert "postgresql+asyncpg://app:***@127.0.0.1" in started[0]
    assert not host.running
    messages = [r.getMessage() for r in caplog_info.records]
    assert any(m.startswith("engine disposed for") for m in messages)
    assert not any("s3cret-pw" in m for m in messages)


async def test_lifespan_leaves_a_running_host_running(mosaic_host: Mosaic) -> None:
    app = Starlette(lifespan=starlette_lifespan(mosaic_host))
    async with lifespan(app):
        assert get_mosaic(_request(app)) is mosaic_host
    assert mosaic_host.running  # the fixture started it, the fixture stops it


def _request(app: Any) -> Request:
    return Request({"type": "http", "app": app, "method": "GET", "path": "/", "headers": []})


class _FailingStartup:
    mosaic_name = "failing"

    @hookimpl
    def mosaic_startup(self, mosaic: Mosaic) -> None:
        raise RuntimeError("cache warm-up failed")


async def test_a_failing_startup_aborts_the_app_and_disposes_the_engine(
    mosaic_fresh_url: str,
) -> None:
    host = Mosaic(
        MosaicSettings.load(database_url=mosaic_fresh_url),
        plugins={"failing": _FailingStartup()},
        discover=False,
    )
    host.load()
    app = FastAPI(lifespan=mosaic_lifespan(host))
    with pytest.raises(RuntimeError, match="startup failed") as failure:
        async with lifespan(app):
            pass  # pragma: no cover
    assert "plugin 'failing': mosaic_startup failed" in str(failure.value)
    assert "cache warm-up failed" in str(failure.value)
    assert not host.running
    assert not host.database.connected


async def test_an_unreachable_database_is_503_with_retry_after(
    caplog_info: pytest.LogCaptureFixture, refused_port: Callable[[], int]
) -> None:
    host = _unreachable_host(refused_port())
    app = FastAPI(lifespan=mosaic_lifespan(host))
    install_exception_handlers(app, retry_after=7)

    @app.get("/users/{user_id}")
    async def read_user(user_id: int, users: Users) -> dict[str, Any]:
        return (await users.get(user_id)).model_dump(exclude={"password_hash"})

    async with client_for(app) as api:
        response = await api.get("/users/1")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.json() == {
        "error": "database_unavailable",
        "detail": "the database is temporarily unavailable; retry later",
    }
    assert "s3cret" not in response.text
    assert any(r.levelno == logging.WARNING for r in caplog_info.records)


async def test_other_mosaic_errors_are_500_without_details(
    mosaic_host: Mosaic, caplog: pytest.LogCaptureFixture
) -> None:
    app = FastAPI(lifespan=mosaic_lifespan(mosaic_host))
    install_exception_handlers(app)

    @app.get("/misconfigured")
    async def misconfigured(session: SessionDep) -> None:
        mosaic_host.repository("secret_plugin.vault", session)  # ConfigurationError

    @app.get("/contention")
    async def contention() -> None:
        raise RetriesExhaustedError("serialization failures on table ledger", attempts=5)

    async with client_for(app) as api:
        for path, leaked in [("/misconfigured", "secret_plugin"), ("/contention", "ledger")]:
            response = await api.get(path)
            assert response.status_code == 500
            assert response.json() == {
                "error": "internal_error",
                "detail": "internal server error",
            }
            assert leaked not in response.text
            logged = [r for r in caplog.records if r.name == "sqlmosaic.integrations"]
            assert leaked in logged[-1].getMessage()  # the server log keeps the details
            assert f"GET {path}" in logged[-1].getMessage()
            assert "Traceback" not in logged[-1].getMessage()  # no cause chain: it may hold values
            assert 'File "' in logged[-1].getMessage()  # our own frames are there


async def test_a_route_without_the_lifespan_is_a_clear_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = FastAPI()
    install_exception_handlers(app)

    @app.get("/users")
    async def users(users: Users) -> None:  # pragma: no cover - the dependency fails first
        raise AssertionError

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t", trust_env=False
    ) as api:
        response = await api.get("/users")
    assert response.status_code == 500
    assert "lifespan" in caplog.records[-1].getMessage()


async def test_starlette_handlers_map_the_same_errors(mosaic_host: Mosaic) -> None:
    async def not_found(request: Request) -> JSONResponse:
        mosaic = get_mosaic(request)
        async with mosaic.session_factory() as session:
            await mosaic.repository(UserRepository, session).get(424242)
        raise AssertionError  # pragma: no cover

    async def unavailable(request: Request) -> JSONResponse:
        raise DatabaseUnavailableError("lost the database connection (ConnectionResetError)")

    async def invalid(request: Request) -> JSONResponse:
        raise InvalidQueryError("cannot sort Task by 'x'", field="x")

    async def config(request: Request) -> JSONResponse:
        raise ConfigurationError("DATABASE_URL: postgresql://u:hunter2@db/x is bad")

    app = Starlette(
        routes=[
            Route("/nf", not_found),
            Route("/down", unavailable),
            Route("/bad", invalid),
            Route("/cfg", config),
        ],
        lifespan=starlette_lifespan(mosaic_host),
        exception_handlers=exception_handlers(),
    )
    async with client_for(app) as api:
        assert (await api.get("/nf")).json()["model"] == "User"
        down = await api.get("/down")
        assert (down.status_code, down.headers["retry-after"]) == (503, "5")
        assert "ConnectionReset" not in down.text
        bad = await api.get("/bad")
        assert (bad.status_code, bad.json()["field"]) == (400, "x")
        cfg = await api.get("/cfg")
        assert cfg.status_code == 500
        assert "hunter2" not in cfg.text


async def test_list_query_dependency_converts_values(mosaic_host: Mosaic) -> None:
    app = FastAPI(lifespan=mosaic_lifespan(mosaic_host))
    install_exception_handlers(app)

    @app.get("/params")
    async def params(
        p: Annotated[ListParams, Depends(list_query(TaskRepository))],
    ) -> dict[str, Any]:
        return {
            "where": {k: [v, type(v).__name__] for k, v in p.where.items()},
            "order_by": list(p.order_by),
            "limit": p.limit,
            "after": p.after,
            "with_total": p.with_total,
        }

    async with client_for(app) as api:
        query = (
            "priority__ge=2&assignee_id__is_null=no&project_id__in=1,2,3&title__ilike=x"
            "&created_at__lt=2026-01-01T00:00:00&sort=-priority&sort=title,id&limit=5&total=1"
        )
        body = (await api.get(f"/params?{query}")).json()
        openapi = (await api.get("/openapi.json")).json()
    assert body["where"] == {
        "priority__ge": [2, "int"],
        "assignee_id__is_null": [False, "bool"],
        "project_id__in": [[1, 2, 3], "list"],
        "title__ilike": ["x", "str"],
        "created_at__lt": ["2026-01-01T00:00:00Z", "datetime"],
    }
    assert body["order_by"] == ["-priority", "title", "id"]
    assert (body["limit"], body["after"], body["with_total"]) == (5, None, True)
    documented = {p["name"] for p in openapi["paths"]["/params"]["get"]["parameters"]}
    assert documented == {"sort", "limit", "after", "total"}


async def test_a_repeated_filter_is_400(mosaic_host: Mosaic) -> None:
    app = FastAPI(lifespan=mosaic_lifespan(mosaic_host))
    install_exception_handlers(app)

    @app.get("/tasks")
    async def tasks(p: Annotated[ListParams, Depends(list_query(TaskRepository))]) -> None:
        raise AssertionError  # pragma: no cover

    async with client_for(app) as api:
        response = await api.get("/tasks?status=open&status=done")
    assert response.status_code == 400
    assert response.json()["field"] == "status"
    assert "status__in" in response.json()["detail"]


@pytest.mark.mosaic_backends("postgresql")
async def test_500_logs_hold_no_bound_values(
    mosaic_host: Mosaic, caplog: pytest.LogCaptureFixture
) -> None:
    """The driver's text names the bad value; neither the response nor the log may show it."""
    from sqlalchemy import text

    class Casting(UserRepository):
        async def cast(self, value: str) -> None:
            await self.session.exec(text("SELECT CAST(:v AS integer)").bindparams(v=value))

    app = FastAPI(lifespan=mosaic_lifespan(mosaic_host))
    install_exception_handlers(app)

    @app.get("/cast")
    async def cast(session: SessionDep) -> None:
        await Casting(session).cast(_SECRET_VALUE)

    caplog.set_level(logging.INFO)
    async with client_for(app) as api:
        response = await api.get("/cast")
    # SQLSTATE 22P02 is a data exception: the caller's value, 400 (issue 12), never the value
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_query"
    assert _SECRET_VALUE not in response.text
    formatter = logging.Formatter()
    for record in caplog.records:  # formatted as a log handler would: with any traceback
        assert _SECRET_VALUE not in formatter.format(record)


_SECRET_VALUE = "zz-secret-" + "value-31337"  # never spelled out on a line a traceback shows
