"""The backend-independent fixtures: URL, engine, isolated connection/session/host, counters.

Isolation: each test gets ONE connection with an outer transaction begun; sessions join it with
``join_transaction_mode="create_savepoint"``, so a unit of work's COMMIT only releases a
savepoint, and the outer ROLLBACK at the end of the test leaves nothing behind (on SQLite too:
sqlmosaic's engine emits its own BEGIN, which makes SAVEPOINT and DDL transactional).

Heavy imports happen inside the fixtures, and sync work (engine creation, plugin imports) in sync
fixtures, so that the event loop is never blocked by the fixtures themselves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from ._options import get_options
from ._sqlcount import SQLCounterFactory

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker
    from sqlmodel.ext.asyncio.session import AsyncSession

    from .._host import Mosaic
    from .._settings import MosaicSettings

__all__ = ["marker_plugins"]


def marker_plugins(node: pytest.Item | pytest.Collector) -> dict[str, object]:
    """The explicit plugins named by ``@pytest.mark.mosaic_plugins(...)`` on ``node`` and up.

    Each argument is a mapping ``{name: plugin}``, a module (named after its last component) or
    an object with a ``mosaic_name``. The closest marker wins a name clash.
    """
    from .._plugins import _explicit_name

    found: dict[str, object] = {}
    for marker in reversed(list(node.iter_markers("mosaic_plugins"))):
        if marker.kwargs:
            raise pytest.UsageError(
                f"{node.nodeid}: @pytest.mark.mosaic_plugins takes plugins, not keywords "
                f"({', '.join(marker.kwargs)})"
            )
        for arg in marker.args:
            if isinstance(arg, Mapping):
                found.update({str(k): v for k, v in arg.items()})
            else:
                found[_explicit_name(arg)] = arg
    return found


@pytest.fixture(scope="session")
def mosaic_backend(request: pytest.FixtureRequest) -> str:
    """``"postgresql"`` or ``"sqlite"``: tests using it run once per ``--mosaic-backends``."""
    param = getattr(request, "param", None)
    if isinstance(param, str):
        return param
    return get_options(request.config).backends[0]


@pytest.fixture(scope="session")
def mosaic_url(request: pytest.FixtureRequest, mosaic_backend: str) -> str:
    """Async URL of this session's migrated database for the current backend."""
    name = "mosaic_pg_url" if mosaic_backend == "postgresql" else "mosaic_sqlite_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture(scope="session")
def mosaic_settings(request: pytest.FixtureRequest, mosaic_url: str) -> MosaicSettings:
    """Settings of the host under test (environment + ``--mosaic-plugins``) at ``mosaic_url``.

    Also imports the enabled plugins once, outside the event loop.
    """
    from .._plugins import load_plugins
    from ._template import settings_for

    settings = settings_for(get_options(request.config), mosaic_url)
    load_plugins(allow=settings.plugins, block=settings.blocked_plugins)
    return settings


@pytest.fixture(scope="session")
def _mosaic_new_engine(mosaic_settings: MosaicSettings) -> AsyncEngine:
    # Sync on purpose: creating the engine imports the driver, which must not block the loop.
    from .._engine import create_engine

    return create_engine(mosaic_settings)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def mosaic_engine(_mosaic_new_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The session's AsyncEngine for ``mosaic_url`` (sqlmosaic.create_engine); disposed at end."""
    try:
        yield _mosaic_new_engine
    finally:
        await _mosaic_new_engine.dispose()


@pytest.fixture
def _mosaic_marker_tables(request: pytest.FixtureRequest) -> list[Table]:
    """Tables of the plugins enabled by ``@pytest.mark.mosaic_plugins`` (not in the migrations)."""
    explicit = marker_plugins(request.node)
    if not explicit:
        return []
    from .._plugins import load_plugins

    settings: MosaicSettings = request.getfixturevalue("mosaic_settings")
    plugins = load_plugins(
        allow=settings.plugins, block=settings.blocked_plugins, plugins=explicit, discover=True
    )
    return [
        plugins.metadata.tables[key]
        for info in plugins.plugins
        if info.source == "explicit"
        for key in info.tables
    ]


@pytest_asyncio.fixture(loop_scope="session")
async def mosaic_connection(
    mosaic_engine: AsyncEngine, _mosaic_marker_tables: list[Table]
) -> AsyncIterator[AsyncConnection]:
    """One connection with an outer transaction begun; rolled back after the test.

    Tables of ``@pytest.mark.mosaic_plugins`` plugins are created inside that transaction.
    """
    async with mosaic_engine.connect() as connection:
        transaction = await connection.begin()
        try:
            if _mosaic_marker_tables:
                tables = _mosaic_marker_tables

                def create(sync: Any) -> None:
                    tables[0].metadata.create_all(sync, tables=tables)

                await connection.run_sync(create)
            yield connection
        finally:
            if transaction.is_active:
                await transaction.rollback()


@pytest.fixture
def mosaic_session_factory(mosaic_connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    """Sessions joined to ``mosaic_connection``: their commits become savepoint releases."""
    from .._engine import create_session_factory

    return create_session_factory(mosaic_connection, join_transaction_mode="create_savepoint")


@pytest_asyncio.fixture(loop_scope="session")
async def mosaic_session(
    mosaic_session_factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """An AsyncSession from ``mosaic_session_factory`` (closed after the test)."""
    async with mosaic_session_factory() as session:
        yield session


@pytest_asyncio.fixture(loop_scope="session")
async def mosaic_host(
    request: pytest.FixtureRequest,
    mosaic_settings: MosaicSettings,
    mosaic_session_factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Mosaic]:
    """A started :class:`sqlmosaic.Mosaic` on the isolated session factory; stopped after.

    Plugins: the installed ones the settings / ``--mosaic-plugins`` enable, plus any given by
    ``@pytest.mark.mosaic_plugins(...)`` for this test.
    """
    from .._host import Mosaic

    host = Mosaic(
        mosaic_settings,
        plugins=marker_plugins(request.node),
        discover=True,
        session_factory=mosaic_session_factory,
    )
    await host.start()  # loads the plugins in a worker thread
    try:
        yield host
    finally:
        await host.stop()


@pytest.fixture
def mosaic_fresh_url(request: pytest.FixtureRequest, mosaic_backend: str) -> Iterator[str]:
    """URL of a brand-new clone of the migrated template (a real separate database); dropped."""
    if mosaic_backend == "postgresql":
        from ._fixtures_pg import pg_clone

        with pg_clone(request.getfixturevalue("_mosaic_pg_database")) as url:
            yield url
    else:
        from ._fixtures_sqlite import sqlite_clone

        with sqlite_clone(request.getfixturevalue("_mosaic_sqlite_template")) as url:
            yield url


@pytest.fixture
def mosaic_empty_url(
    request: pytest.FixtureRequest, mosaic_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """URL of a brand-new EMPTY database (no migrations applied); dropped after."""
    if mosaic_backend == "postgresql":
        from ._fixtures_pg import PgDatabase, pg_empty

        server = request.getfixturevalue("_mosaic_pg_server")
        with pg_empty(PgDatabase(server, server.template_dbname)) as url:
            yield url
    else:
        from ._fixtures_sqlite import sqlite_empty

        with sqlite_empty(tmp_path_factory.mktemp("mosaic-empty")) as url:
            yield url


@pytest.fixture
def mosaic_sql_counter(mosaic_engine: AsyncEngine) -> SQLCounterFactory:
    """``with mosaic_sql_counter() as sql: ...`` then ``sql.count`` / ``sql.statements``."""
    return SQLCounterFactory(mosaic_engine)


@pytest.fixture
def mosaic_migration_data() -> Mapping[str, Any]:
    """Rows the stairway migration check inserts after upgrading to a revision (override it).

    ``{revision_id: {table: [row, ...]}}`` or ``{revision_id: callable(sync_connection)}``.
    """
    return {}
