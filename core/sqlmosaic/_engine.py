"""Build the async engine and session factory from :class:`MosaicSettings`.

PostgreSQL (asyncpg): ``pool_pre_ping``, ``application_name``, optional ``statement_timeout``,
client ``command_timeout``, and ``hide_parameters`` so errors never print bound values.

SQLite (aiosqlite): foreign keys ON, WAL, a busy timeout, and pysqlite's transaction handling
replaced by explicit ``BEGIN`` statements so that SAVEPOINTs work and a unit of work's
read-modify-write cannot interleave with another writer (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool, StaticPool
from sqlalchemy.sql.compiler import InsertmanyvaluesSentinelOpts
from sqlalchemy.util.concurrency import await_
from sqlmodel.ext.asyncio.session import AsyncSession

from ._settings import MosaicSettings

__all__ = ["SQLITE_BEGIN_OPTION", "create_engine", "create_session_factory"]

#: Connection execution option read by the SQLite ``begin`` listener: ``"DEFERRED"`` (default)
#: or ``"IMMEDIATE"`` (units of work that write take the write lock up front).
SQLITE_BEGIN_OPTION = "mosaic_sqlite_begin"


def create_engine(settings: MosaicSettings, **overrides: Any) -> AsyncEngine:
    """Create the engine for ``settings``; ``overrides`` go to ``create_async_engine``."""
    url = settings.url
    kwargs: dict[str, Any] = {"echo": settings.echo, "hide_parameters": True}
    if url.get_backend_name() == "sqlite":
        kwargs.update(_sqlite_options(settings))
    else:
        kwargs.update(_postgres_options(settings))
    kwargs.update(overrides)
    if kwargs.get("poolclass") in (NullPool, StaticPool):
        for queue_pool_only in ("pool_size", "max_overflow", "pool_timeout"):
            kwargs.pop(queue_pool_only, None)
    engine = create_async_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        install_sqlite_listeners(engine, busy_timeout=settings.sqlite_busy_timeout)
    return engine


def create_session_factory(
    bind: AsyncEngine | Any, **kwargs: Any
) -> async_sessionmaker[AsyncSession]:
    """The session factory: SQLModel's ``AsyncSession``, ``expire_on_commit=False``."""
    kwargs.setdefault("expire_on_commit", False)
    return async_sessionmaker(bind, class_=AsyncSession, **kwargs)


def _postgres_options(settings: MosaicSettings) -> dict[str, Any]:
    driver = settings.url.get_driver_name()
    server_settings = {"application_name": settings.application_name}
    if settings.statement_timeout is not None:
        server_settings["statement_timeout"] = str(int(settings.statement_timeout * 1000))
    connect_args: dict[str, Any]
    if driver == "asyncpg":
        connect_args = {"server_settings": server_settings, "timeout": settings.connect_timeout}
        if settings.command_timeout is not None:
            connect_args["command_timeout"] = settings.command_timeout
    else:  # psycopg
        options = " ".join(
            f"-c {k}={v}" for k, v in server_settings.items() if k != "application_name"
        )
        connect_args = {
            "application_name": settings.application_name,
            "connect_timeout": int(settings.connect_timeout),
        }
        if options:
            connect_args["options"] = options
    return {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "pool_timeout": settings.pool_timeout,
        "pool_recycle": settings.pool_recycle,
        "pool_pre_ping": True,
        "connect_args": connect_args,
    }


def _sqlite_options(settings: MosaicSettings) -> dict[str, Any]:
    database = settings.url.database
    if not database or database == ":memory:":
        # One shared connection, or every session would see its own empty database.
        return {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    return {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "pool_timeout": settings.pool_timeout,
        "connect_args": {"timeout": settings.sqlite_busy_timeout},
    }


def install_sqlite_listeners(engine: AsyncEngine, *, busy_timeout: float = 30.0) -> None:
    """Fix pysqlite's transaction handling on ``engine`` and set the connection pragmas.

    Idempotent: installing twice on the same engine is a no-op.
    """
    sync_engine = engine.sync_engine
    if sync_engine.dialect.name != "sqlite" or event.contains(sync_engine, "begin", _sqlite_begin):
        return
    in_memory = sync_engine.url.database in (None, "", ":memory:")

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (not pysqlite) emit BEGIN: SAVEPOINT and BEGIN IMMEDIATE then work.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            # LIKE is case-sensitive on PostgreSQL; make SQLite's agree (``like`` filters).
            cursor.execute("PRAGMA case_sensitive_like=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    event.listen(sync_engine, "begin", _sqlite_begin)
    event.listen(sync_engine, "handle_error", _sqlite_keep_connection_on_cancel)
    # Batch ORM inserts: SQLAlchemy sends one INSERT per row on SQLite when it needs the new
    # primary keys back in order, because it does not treat SQLite's integer primary key as an
    # "implicit sentinel". SQLite assigns a rowid table's new keys in increasing order of the
    # VALUES rows (max(rowid) + 1 each), so sorting RETURNING rows by the key restores the
    # parameter order: let ``insertmanyvalues`` batch (``add_many`` of 500 rows: a few INSERTs).
    # IDENTITY too: SQLite ignores ``Identity()`` (such a column is the same INTEGER PRIMARY KEY
    # rowid alias), but SQLAlchemy characterizes it as an identity sentinel, not autoincrement.
    sync_engine.dialect.insertmanyvalues_implicit_sentinel = (
        InsertmanyvaluesSentinelOpts.AUTOINCREMENT | InsertmanyvaluesSentinelOpts.IDENTITY
    )


def _sqlite_keep_connection_on_cancel(context: ExceptionContext) -> None:
    """Do not invalidate an aiosqlite connection whose task was cancelled mid-statement.

    SQLAlchemy invalidates (closes) a connection when a ``CancelledError`` interrupts a
    statement, because the state of a network protocol is then unknown. aiosqlite runs every
    call in order on its own thread, so the connection stays consistent; but closing it while
    the cancelled statement still holds its cursor leaves a "zombie" SQLite connection that
    keeps the transaction, and with it the database's WRITE LOCK, until that cursor is garbage
    collected: every other writer then fails with "database is locked". Kept, the connection
    closes the cursor and the unit of work rolls back as usual, which releases the lock.
    """
    if context.is_disconnect and isinstance(context.original_exception, asyncio.CancelledError):
        context.is_disconnect = False


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
    statement = f"BEGIN {mode}"
    if not _begin_in_driver_thread(conn, statement):
        conn.exec_driver_sql(statement)


def _execute_and_close(raw: sqlite3.Connection, statement: str) -> None:
    raw.execute(statement).close()


def _begin_in_driver_thread(conn: Connection, statement: str) -> bool:
    """Send ``BEGIN`` in ONE trip to aiosqlite's worker thread; False: not possible here.

    ``exec_driver_sql`` takes three trips (cursor, execute, close) plus SQLAlchemy's statement
    machinery: about a quarter of the CPU time of a short unit of work on SQLite (measured in
    bench/, see docs/performance.md). When the BEGIN must stay visible (echo on, or a
    ``before/after_cursor_execute`` listener, such as the test plugin's SQL counter), or the
    driver is not aiosqlite as expected, the caller takes the normal path.
    """
    if getattr(conn, "_echo", True):
        return False
    for dispatch in (conn.dispatch, conn.engine.dispatch):
        if dispatch.before_cursor_execute or dispatch.after_cursor_execute:
            return False
    driver = getattr(conn.connection.dbapi_connection, "_connection", None)
    run = getattr(driver, "_execute", None)
    try:
        raw = getattr(driver, "_conn", None)
    except ValueError:  # aiosqlite: no active connection
        return False
    if run is None or not isinstance(raw, sqlite3.Connection):
        return False
    try:
        await_(run(_execute_and_close, raw, statement))
    except sqlite3.Error as exc:
        # what exec_driver_sql would raise: sqlalchemy.exc.OperationalError etc., orig = driver
        # error (its sqlite_errorcode drives translate_error / is_retryable)
        raise sa_exc.DBAPIError.instance(
            statement, None, exc, sqlite3.Error, hide_parameters=True, dialect=conn.dialect
        ) from exc
    return True
