"""FastAPI integration (``pip install "sqlmosaic[fastapi]"``).

    from typing import Annotated
    from fastapi import Depends, FastAPI
    from sqlmosaic import Mosaic
    from sqlmosaic.integrations.fastapi import (
        ListParams, SessionDep, install_exception_handlers, list_query, mosaic_lifespan,
        repository_dependency,
    )

    mosaic = Mosaic()
    app = FastAPI(lifespan=mosaic_lifespan(mosaic))
    install_exception_handlers(app)          # NotFoundError -> 404, ConflictError -> 409, ...

    Users = Annotated[UserRepository, Depends(repository_dependency(UserRepository))]

    @app.get("/users/{user_id}")
    async def read_user(user_id: int, users: Users) -> UserRead:
        return UserRead.model_validate(await users.get(user_id))      # 404 when missing

    @app.get("/users")
    async def list_users(
        users: Users, params: Annotated[ListParams, Depends(list_query(UserRepository))]
    ) -> ...:
        page = await params.fetch(users)      # ?sort=-created_at&is_active=true&limit=20&after=

Every dependency here finds the host through the request (``app.state.mosaic``, set by the
lifespan), so routers can live in modules that never see the ``Mosaic`` object, and an app
factory can take it as an argument. The core's own ``Depends(mosaic.get_db_session)`` works
too when the host is a module global; use one style per application, so that one request
gets one session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from .._host import Mosaic
from .._repository import Repository
from ._errors import DEFAULT_RETRY_AFTER, ErrorBody, ErrorResponse, error_response
from ._listing import RESERVED, ListParams, parse_list_params
from .starlette import (
    check_database,
    exception_handlers,
    get_mosaic,
    install_exception_handlers,
    mosaic_error_handler,
    mosaic_lifespan,
    read_only_transaction,
)

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "RESERVED",
    "ErrorBody",
    "ErrorResponse",
    "ListParams",
    "MosaicDep",
    "ReadOnlySessionDep",
    "SessionDep",
    "check_database",
    "error_response",
    "exception_handlers",
    "get_mosaic",
    "get_read_only_session",
    "get_session",
    "install_exception_handlers",
    "list_query",
    "mosaic_dependency",
    "mosaic_error_handler",
    "mosaic_lifespan",
    "parse_list_params",
    "read_only_transaction",
    "repository_dependency",
]

RepoT = TypeVar("RepoT", bound=Repository[Any])


async def mosaic_dependency(request: Request) -> Mosaic:
    """Dependency: the application's host (set by :func:`mosaic_lifespan`).

    Every dependency here is a coroutine function: FastAPI runs plain functions in a worker
    thread, which would cost a thread hop per request for no work at all.
    """
    return get_mosaic(request)


MosaicDep = Annotated[Mosaic, Depends(mosaic_dependency)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Dependency: one session per request, closed after the response.

    It never commits: services do, through a unit of work (``@transactional`` or
    ``mosaic.unit_of_work(session)``). Anything left uncommitted is rolled back on close.
    """
    async with get_mosaic(request).session_factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_read_only_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Dependency: a session inside a READ-ONLY unit of work, ended after the endpoint.

    The same unit as ``mosaic.transaction(read_only=True)``: on a read replica when there are
    any (``MOSAIC_READ_REPLICA_URLS``; round-robin, the primary when none is healthy or none
    has replayed a write this request made before the dependency ran), and writes are refused.
    A replica failing meanwhile: :class:`~sqlmosaic.DatabaseUnavailableError` (a 503 with the
    installed handlers).
    """
    async with read_only_transaction(request) as session:
        yield session


ReadOnlySessionDep = Annotated[AsyncSession, Depends(get_read_only_session)]


def repository_dependency(
    repository: type[RepoT], *, read_only: bool = False
) -> Callable[..., Awaitable[RepoT]]:
    """Dependency factory: ``repository`` bound to the request's session.

    ``Annotated[UserRepository, Depends(repository_dependency(UserRepository))]``. The
    repository must be registered by an enabled plugin (otherwise a 500 names it); it shares
    the session of :data:`SessionDep`, so reads and a unit of work in one request agree.
    ``read_only=True``: it shares :data:`ReadOnlySessionDep` instead (a read replica when
    there are any).
    """
    if read_only:

        async def read_only_dependency(request: Request, session: ReadOnlySessionDep) -> RepoT:
            return get_mosaic(request).repository(repository, session)

        read_only_dependency.__name__ = f"{repository.__name__}_read_only_dependency"
        return read_only_dependency

    async def dependency(request: Request, session: SessionDep) -> RepoT:
        return get_mosaic(request).repository(repository, session)

    dependency.__name__ = f"{repository.__name__}_dependency"
    return dependency


def list_query(repository: type[Repository[Any]]) -> Callable[..., Awaitable[ListParams]]:
    """Dependency factory: the request's list parameters, checked against ``repository``.

    ``?sort=-priority,title&status=open&priority__ge=2&limit=20&after=CURSOR&total=true``.
    Filters are ``field=value`` or ``field__op=value``; an unknown or hidden field, an unknown
    operator or a value of the wrong type is a 400 whose ``field`` names it. ``sort``,
    ``limit``, ``after`` and ``total`` are declared here only so that they show in OpenAPI; the
    whole query string is parsed by :func:`parse_list_params` so every error is a 400.
    """

    async def dependency(
        request: Request,
        sort: Annotated[
            str | None, Query(description="comma-separated fields; prefix - for descending")
        ] = None,
        limit: Annotated[str | None, Query(description="page size")] = None,
        after: Annotated[
            str | None, Query(description="next_cursor from the previous page")
        ] = None,
        total: Annotated[str | None, Query(description="true: also count the rows")] = None,
    ) -> ListParams:
        return parse_list_params(request.query_params.multi_items(), repository)

    dependency.__name__ = f"{repository.__name__}_list_query"
    return dependency
