"""Build the async engine and session factory from :class:`MosaicSettings`.

PostgreSQL (asyncpg): a checkout liveness check (``_liveness``: closed sockets replaced for
free, a ping only after ``pool_ping_after`` seconds idle), ``application_name``, optional
``statement_timeout``, client ``command_timeout`` (a hung server: ``_teardown``), and
``hide_parameters`` (errors never print bound values).

SQLite (aiosqlite): foreign keys ON, WAL, a busy timeout, and pysqlite's transaction handling
replaced by explicit ``BEGIN`` statements so that SAVEPOINTs work and a unit of work's
read-modify-write cannot interleave with another writer (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, NullPool, StaticPool
from sqlmodel.ext.asyncio.session import AsyncSession

from ._exceptions import ConfigurationError
from ._liveness import install_liveness_check
from ._refusals import install_refusal_log
from ._settings import MosaicSettings
from ._teardown import install_asyncpg_teardown

__all__ = ["SQLITE_BEGIN_OPTION", "create_engine", "create_session_factory", "set_begin_mode"]

#: Connection execution option read by the SQLite ``begin`` listener: ``"DEFERRED"`` (default)
#: or ``"IMMEDIATE"`` (units of work that write take the write lock up front).
SQLITE_BEGIN_OPTION = "mosaic_sqlite_begin"
#: Where the mode is kept for the current checkout: the pool record's ``info`` (reset at checkin).
_BEGIN_MODE_KEY = "mosaic_sqlite_begin_mode"


def create_engine(settings: MosaicSettings, **overrides: Any) -> AsyncEngine:
    """Create the engine for ``settings``; ``overrides`` go to ``create_async_engine``."""
    url = settings.url
    kwargs: dict[str, Any] = {"echo": settings.echo, "hide_parameters": True}
    if settings.query_cache_size is not None:
        kwargs["query_cache_size"] = settings.query_cache_size
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
    elif not kwargs.get("pool_pre_ping") and kwargs.get("poolclass") is not NullPool:
        install_liveness_check(engine, ping_after=settings.pool_ping_after)
    if url.get_backend_name() == "postgresql":
        install_refusal_log(engine, masked_url=settings.masked_url)
    if url.get_driver_name() == "asyncpg":
        install_asyncpg_teardown(engine, command_timeout=settings.command_timeout)
    return engine


def create_session_factory(
    bind: AsyncEngine | Any, **kwargs: Any
) -> async_sessionmaker[AsyncSession]:
    """The session factory: SQLModel's ``AsyncSession``, ``expire_on_commit=False``.

    With ``binds=`` (tables on other databases, see :mod:`sqlmosaic._binds`), its sessions
    refuse to commit a unit of work that wrote to two of them (``CrossBindWriteError``).
    """
    kwargs.setdefault("expire_on_commit", False)
    if kwargs.get("binds"):
        from ._binds import BindsSession

        kwargs.setdefault("sync_session_class", BindsSession)
    return async_sessionmaker(bind, class_=AsyncSession, **kwargs)


def _postgres_options(settings: MosaicSettings) -> dict[str, Any]:
    driver = settings.url.get_driver_name()
    server_settings = {"application_name": settings.application_name}
    if settings.pgbouncer and settings.statement_timeout is not None:
        # A startup parameter PgBouncer does not know is refused ("unsupported startup
        # parameter"), and ignore_startup_parameters would drop it silently: say so instead.
        raise ConfigurationError(
            "MOSAIC_STATEMENT_TIMEOUT is sent as a startup parameter, which PgBouncer does not "
            "pass on: set it on the role instead (ALTER ROLE ... SET statement_timeout = ...)",
            setting="MOSAIC_STATEMENT_TIMEOUT",
        )
    if settings.statement_timeout is not None:
        server_settings["statement_timeout"] = str(int(settings.statement_timeout * 1000))
    connect_args: dict[str, Any]
    if driver == "asyncpg":
        connect_args = {"server_settings": server_settings, "timeout": settings.connect_timeout}
        if settings.command_timeout is not None:
            connect_args["command_timeout"] = settings.command_timeout
        if settings.pgbouncer:
            connect_args.update(_asyncpg_pgbouncer_args())
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
        if settings.pgbouncer:
            connect_args["prepare_threshold"] = None  # psycopg: never prepare server-side
    return {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "pool_timeout": settings.pool_timeout,
        "pool_recycle": settings.pool_recycle,
        "connect_args": connect_args,
    }


def _asyncpg_pgbouncer_args() -> dict[str, Any]:
    """asyncpg behind PgBouncer's transaction pooling (1.18 forwards no prepared statements).

    Consecutive transactions of one client connection may run on different server connections,
    and one server connection serves many clients. asyncpg's statement cache and SQLAlchemy's
    would reuse a statement prepared on another server connection ("prepared statement ... does
    not exist"), and asyncpg's per-connection counter names (``__asyncpg_stmt_1__``) collide
    between clients sharing a server connection ("... already exists"): both caches off, and
    every statement SQLAlchemy prepares gets a name of its own.
    """
    return {
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": _unique_statement_name,
    }


def _unique_statement_name() -> str:
    return f"__mosaic_{uuid.uuid4().hex}__"


def _sqlite_options(settings: MosaicSettings) -> dict[str, Any]:
    database = settings.url.database
    if not database or database == ":memory:":
        # One connection, or every session would see its own empty database; lent to one
        # session at a time, or concurrent units of work would share one transaction.
        return {
            "poolclass": SingleConnectionPool,
            "pool_size": 1,
            "max_overflow": 0,
            "pool_timeout": settings.pool_timeout,
            "connect_args": {"check_same_thread": False, "factory": DeferredBeginConnection},
        }
    return {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "pool_timeout": settings.pool_timeout,
        "connect_args": {
            "timeout": settings.sqlite_busy_timeout,
            "factory": DeferredBeginConnection,
        },
    }


class SingleConnectionPool(AsyncAdaptedQueuePool):
    """The pool of an in-memory SQLite engine: ONE connection (it is the database), lent to one
    session at a time.

    ``StaticPool`` lent the same connection to every session at once: concurrent units of work
    then shared one transaction, and one unit's rollback erased another's committed row (1,000
    concurrent increments ended at 1). Here a second session waits (asynchronously, up to
    ``pool_timeout``: then :class:`DatabaseUnavailableError`) until the first has committed or
    rolled back and given the connection back. A task that already holds the connection and
    asks for it again would wait on itself: that raises :class:`ConfigurationError` at once.
    """

    _mosaic_holder: asyncio.Task[Any] | None = None

    def _do_get(self) -> ConnectionPoolEntry:
        task = _current_task()
        if task is not None and task is self._mosaic_holder:
            raise ConfigurationError(
                "an in-memory SQLite database has one connection and this task already holds it "
                "(a second session inside a unit of work?): use the same session, or a file "
                "database",
                setting="DATABASE_URL",
            )
        record = super()._do_get()
        self._mosaic_holder = task
        return record

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        self._mosaic_holder = None
        super()._do_return_conn(record)


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop (a sync engine use)
        return None


def install_sqlite_listeners(engine: AsyncEngine, *, busy_timeout: float = 30.0) -> None:
    """Fix pysqlite's transaction handling on ``engine`` and set the connection pragmas.

    SQLAlchemy, not pysqlite, starts transactions: the dialect's ``do_begin`` (a no-op for
    pysqlite) leaves ``BEGIN DEFERRED`` or, for a connection with the execution option
    :data:`SQLITE_BEGIN_OPTION` ``"IMMEDIATE"``, ``BEGIN IMMEDIATE`` to be sent with the
    transaction's first statement (see :class:`DeferredBeginConnection`). SAVEPOINTs then work,
    DDL is transactional, and a unit of work holds the write lock from its first statement.
    No connection event listener is installed: SQLAlchemy runs its per-statement event dispatch
    only on engines that have one (~5 % of a short read).

    Idempotent: installing twice on the same engine is a no-op.
    """
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect
    if dialect.name != "sqlite" or has_deferred_begin(sync_engine):
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

    if in_memory:
        # One connection holds the whole database (SingleConnectionPool): SQLAlchemy must not
        # close it when a statement is cancelled, or the data is gone. Costs the per-statement event
        # dispatch on this engine only.
        event.listen(sync_engine, "handle_error", _keep_connection_on_cancel)

    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info.pop(_BEGIN_MODE_KEY, None)  # a mode set by one checkout never leaks on

    set_options = dialect.set_connection_execution_options

    def set_connection_execution_options(connection: Connection, opts: Any) -> None:
        mode = opts.get(SQLITE_BEGIN_OPTION)
        if mode is not None:
            connection.connection.info[_BEGIN_MODE_KEY] = _check_mode(mode)
        set_options(connection, opts)

    set_engine_options = dialect.set_engine_execution_options

    def set_engine_execution_options(option_engine: Any, opts: Any) -> None:
        # engine.execution_options(mosaic_sqlite_begin=...): every connection of that engine
        mode = opts.get(SQLITE_BEGIN_OPTION)
        if mode is not None:
            _check_mode(mode)

            @event.listens_for(option_engine, "engine_connect")
            def _set_mode(connection: Connection) -> None:
                connection.connection.info[_BEGIN_MODE_KEY] = mode

        set_engine_options(option_engine, opts)

    # Instance attributes of this engine's own dialect object (SQLAlchemy builds one per
    # engine); the class and every other engine are untouched.
    dialect.set_engine_execution_options = set_engine_execution_options  # type: ignore[method-assign,assignment]
    dialect.set_connection_execution_options = set_connection_execution_options  # type: ignore[method-assign]
    dialect.do_begin = _do_begin  # type: ignore[method-assign,assignment]
    set_isolation = dialect.set_isolation_level

    def set_isolation_level(dbapi_connection: Any, level: Any) -> None:
        # AUTOCOMMIT: no BEGIN at all (``_do_begin`` reads the flag), each statement commits
        raw = _raw_connection(dbapi_connection)
        if isinstance(raw, DeferredBeginConnection):
            raw.mosaic_autocommit = level == "AUTOCOMMIT"
        set_isolation(dbapi_connection, level)

    dialect.set_isolation_level = set_isolation_level  # type: ignore[method-assign]
    # No ``insertmanyvalues_implicit_sentinel`` override: SQLite picks rowids at random once a
    # table holds 2**63-1, so matching RETURNING rows to VALUES order by key can hand objects
    # other rows' keys. The ORM keeps SQLAlchemy's own (one INSERT per row when it needs the
    # keys in order); ``add_many``'s direct INSERT checks the maximum first (see ``_plans``).


def _check_mode(mode: Any) -> str:
    if mode not in ("DEFERRED", "IMMEDIATE"):
        raise ValueError(f"{SQLITE_BEGIN_OPTION} must be DEFERRED or IMMEDIATE: {mode!r}")
    return str(mode)


def _keep_connection_on_cancel(context: ExceptionContext) -> None:
    """Do not invalidate (close) an in-memory SQLite connection after a ``CancelledError``.

    SQLAlchemy closes a connection whose statement a cancellation interrupted, since a network
    protocol's state is then unknown; aiosqlite runs every call in order on its own thread, so
    the connection is still consistent, and the unit of work rolls it back as usual.
    """
    if context.is_disconnect and isinstance(context.original_exception, asyncio.CancelledError):
        context.is_disconnect = False


def has_deferred_begin(sync_engine: Any) -> bool:
    """Whether :func:`install_sqlite_listeners` set ``sync_engine`` up (sqlmosaic emits BEGIN)."""
    return getattr(sync_engine.dialect, "do_begin", None) is _do_begin


def _do_begin(pooled: Any) -> None:
    """``Dialect.do_begin`` of sqlmosaic's SQLite engines: leave the BEGIN for the first statement.

    ``pooled`` is the pool's proxy; its ``dbapi_connection`` is SQLAlchemy's aiosqlite adapter.
    """
    adapter = pooled.dbapi_connection
    statement = f"BEGIN {pooled.info.get(_BEGIN_MODE_KEY, 'DEFERRED')}"
    raw = _raw_connection(adapter)
    if isinstance(raw, DeferredBeginConnection):
        if not raw.mosaic_autocommit:
            raw.mosaic_pending_begin = statement
        return
    # not one of ours (a ``factory`` of the caller's own in connect_args): send it now
    cursor = adapter.cursor()
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


def set_begin_mode(connection: Connection, mode: str) -> None:
    """Change the ``BEGIN`` still pending on ``connection`` (of a sqlmosaic SQLite engine) to
    ``mode``: a bind's connection that joins a unit of work begins as the unit did."""
    raw = _raw_connection(connection.connection.dbapi_connection)
    if isinstance(raw, DeferredBeginConnection) and raw.mosaic_pending_begin is not None:
        raw.mosaic_pending_begin = f"BEGIN {_check_mode(mode)}"


def _raw_connection(adapter: Any) -> Any:
    """The ``sqlite3`` connection under SQLAlchemy's aiosqlite adapter (or None)."""
    return getattr(getattr(adapter, "_connection", None), "_connection", None)


class DeferredBeginCursor(sqlite3.Cursor):
    """Sends its connection's pending ``BEGIN`` before the statement, in the same call."""

    def execute(self, sql: str, parameters: Any = (), /) -> DeferredBeginCursor:
        connection = self.connection
        if isinstance(connection, DeferredBeginConnection):
            connection.send_pending_begin()
        super().execute(sql, parameters)
        return self

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> DeferredBeginCursor:
        connection = self.connection
        if isinstance(connection, DeferredBeginConnection):
            connection.send_pending_begin()
        super().executemany(sql, seq_of_parameters)
        return self


class DeferredBeginConnection(sqlite3.Connection):
    """A ``sqlite3`` connection whose ``BEGIN`` travels with the transaction's first statement.

    aiosqlite runs every sqlite3 call on its own thread, one trip per call; a ``BEGIN`` of its
    own was one more trip per transaction (about a sixth of a short read, measured in bench/).
    The engine's ``do_begin`` leaves the statement here; the next cursor ``execute`` (on the
    worker thread) sends it first, and a ``commit``/``rollback`` with nothing sent since drops it
    (nothing to end). The transaction is the same: it starts before its first statement, and
    ``BEGIN IMMEDIATE`` still takes the write lock before any read.

    ``close`` rolls back first. SQLAlchemy closes (invalidates) a connection whose statement was
    interrupted by a ``CancelledError``; a cursor of the cancelled statement may still be open,
    and closing a connection with an unfinalized statement leaves a "zombie" that keeps its
    transaction, and with it the database's write lock, until that cursor is garbage collected.
    Rolled back first, the lock is released at once.
    """

    mosaic_pending_begin: str | None = None
    #: the connection's isolation level is AUTOCOMMIT: no BEGIN is left pending
    mosaic_autocommit: bool = False

    def cursor(self, factory: Any = None) -> sqlite3.Cursor:  # type: ignore[override]
        return super().cursor(factory or DeferredBeginCursor)

    def send_pending_begin(self) -> None:
        statement = self.mosaic_pending_begin
        if statement is not None:
            # cleared only once it worked: a BEGIN IMMEDIATE that found the database busy is
            # tried again by the next statement, which never runs outside the transaction
            sqlite3.Cursor(self).execute(statement).close()
            self.mosaic_pending_begin = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        self.send_pending_begin()
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        self.send_pending_begin()
        return super().executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        self.send_pending_begin()
        return super().executescript(sql_script)

    def commit(self) -> None:
        self.mosaic_pending_begin = None
        super().commit()

    def rollback(self) -> None:
        self.mosaic_pending_begin = None
        super().rollback()

    def close(self) -> None:
        self.mosaic_pending_begin = None
        try:
            if self.in_transaction:
                super().rollback()
        except sqlite3.Error:
            pass  # closing anyway; SQLite rolls back an open transaction on close
        super().close()
