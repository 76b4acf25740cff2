"""Starlette integration (``pip install "sqlmosaic[starlette]"``).

    from sqlmosaic import Mosaic
    from sqlmosaic.integrations.starlette import (
        exception_handlers, get_mosaic, list_params, mosaic_lifespan,
    )

    mosaic = Mosaic()
    app = Starlette(
        routes=[...],
        lifespan=mosaic_lifespan(mosaic),        # start on startup, dispose on shutdown
        exception_handlers=exception_handlers(), # NotFoundError -> 404, ...
    )

    async def list_users(request: Request) -> JSONResponse:
        mosaic = get_mosaic(request)
        params = list_params(request, UserRepository)   # ?sort=-name&is_active=true&limit=20
        async with mosaic.session_factory() as session:
            page = await params.fetch(UserRepository(session))
        ...

FastAPI builds on Starlette, so :mod:`sqlmosaic.integrations.fastapi` reuses this module's
lifespan and error mapping.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ExceptionHandler

from .._exceptions import ConfigurationError, MosaicError
from .._host import Mosaic
from .._repository import Repository
from ._errors import DEFAULT_RETRY_AFTER, ErrorBody, ErrorResponse, error_response
from ._listing import RESERVED, ListParams, parse_list_params

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "RESERVED",
    "STATE_KEY",
    "ErrorBody",
    "ErrorResponse",
    "ListParams",
    "check_database",
    "describe_host",
    "error_response",
    "exception_handlers",
    "get_mosaic",
    "install_exception_handlers",
    "list_params",
    "mosaic_error_handler",
    "mosaic_lifespan",
    "parse_list_params",
    "read_only_transaction",
]

_log = logging.getLogger("sqlmosaic.integrations")

#: Where the lifespan stores the host: ``app.state.mosaic``.
STATE_KEY = "mosaic"


def describe_host(mosaic: Mosaic) -> str:
    """``plugins: accounts 0.1.0, tasks 0.1.0; database: sqlite+aiosqlite:///./mosaic.db``."""
    plugins = mosaic.plugins
    names = ", ".join(f"{p.name} {p.version or '(no version)'}" for p in plugins.plugins)
    text = f"plugins: {names or 'none'}; database: {mosaic.settings.masked_url}"
    if plugins.skipped:
        text += "; skipped: " + ", ".join(f"{s.name} ({s.reason})" for s in plugins.skipped)
    return text


def mosaic_lifespan(
    mosaic: Mosaic,
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """A lifespan that stores ``mosaic`` in ``app.state.mosaic``, starts and stops it.

    On startup it runs :meth:`Mosaic.start` (plugins loaded and checked, engine created, plugin
    startup hooks run) and logs the enabled plugins with their versions and the masked
    database URL; a failure aborts the server's startup. On shutdown it runs
    :meth:`Mosaic.stop` (plugin shutdown hooks, engine disposed). A host that is already
    running (a test fixture's) is used as is and left running.
    """

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        setattr(app.state, STATE_KEY, mosaic)
        owned = not mosaic.running
        if owned:
            await mosaic.start()
        _log.info("sqlmosaic host started: %s", describe_host(mosaic))
        try:
            yield
        finally:
            if owned:
                await mosaic.stop()
                _log.info("sqlmosaic host stopped (engine disposed)")

    return lifespan


async def check_database(mosaic: Mosaic) -> None:
    """``SELECT 1`` in a unit of work: returns when the database answers.

    For a health route: when the database is down it raises
    :class:`~sqlmosaic.DatabaseUnavailableError`, which the installed handlers turn into a 503
    with the typed body and ``Retry-After`` (never a 500 with a traceback).
    """
    from sqlalchemy import text

    from .._translate import translate_error

    try:
        async with mosaic.database.transaction() as session:
            connection = await session.connection()
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        # Connecting is the whole point here: a refused or timed-out connect (a bare OSError /
        # TimeoutError from the driver) means "unavailable" too.
        translated = translate_error(exc)
        if translated is not None and translated is not exc:
            raise translated from exc
        raise


def get_mosaic(connection: HTTPConnection) -> Mosaic:
    """The host stored by :func:`mosaic_lifespan` (``ConfigurationError`` when there is none)."""
    mosaic = getattr(connection.app.state, STATE_KEY, None)
    if not isinstance(mosaic, Mosaic):
        raise ConfigurationError(
            "no sqlmosaic host on this application: pass lifespan=mosaic_lifespan(mosaic) "
            "(or set app.state.mosaic)",
            setting="lifespan",
        )
    return mosaic


def read_only_transaction(connection: HTTPConnection) -> AbstractAsyncContextManager[AsyncSession]:
    """``async with read_only_transaction(request) as session``: a new session in a READ-ONLY
    unit of work, exactly ``mosaic.transaction(read_only=True)``: on a read replica when there
    are any (``MOSAIC_READ_REPLICA_URLS``), on the primary after this request's own write until
    a replica has replayed it; writes are refused."""
    session: AbstractAsyncContextManager[AsyncSession] = get_mosaic(connection).transaction(
        read_only=True
    )
    return session


def list_params(request: Request, repository: type[Repository[Any]]) -> ListParams:
    """The request's list parameters, checked against ``repository`` (see ``parse_list_params``)."""
    return parse_list_params(request.query_params.multi_items(), repository)


def _json_response(error: ErrorResponse) -> JSONResponse:
    return JSONResponse(error.body, status_code=error.status, headers=error.headers or None)


def mosaic_error_handler(
    *, retry_after: int = DEFAULT_RETRY_AFTER, body: ErrorBody | None = None
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """An exception handler for :class:`MosaicError` (and subclasses) using the shared mapping.

    ``body(exc, response)`` replaces the JSON body (status and headers stay), e.g.
    ``lambda exc, r: {"detail": r.body["detail"]}``. A coroutine function, so that Starlette
    runs it on the event loop, not in a thread.
    """

    async def handle(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, MosaicError):  # pragma: no cover - registered for MosaicError
            raise exc
        where = f" on {request.method} {request.url.path}"
        response = error_response(exc, retry_after=retry_after, where=where)
        if body is not None:
            response = ErrorResponse(response.status, body(exc, response), response.headers)
        return _json_response(response)

    return handle


def exception_handlers(
    *, retry_after: int = DEFAULT_RETRY_AFTER, body: ErrorBody | None = None
) -> dict[Any, ExceptionHandler]:
    """``{MosaicError: handler}`` for ``Starlette(exception_handlers=...)``."""
    return {MosaicError: mosaic_error_handler(retry_after=retry_after, body=body)}


def install_exception_handlers(
    app: Starlette, *, retry_after: int = DEFAULT_RETRY_AFTER, body: ErrorBody | None = None
) -> None:
    """Register the error mapping on an existing application (Starlette or FastAPI)."""
    app.add_exception_handler(MosaicError, mosaic_error_handler(retry_after=retry_after, body=body))
