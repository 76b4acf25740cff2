"""``Database`` owns one async engine and its session factory.

Nothing connects at construction or import: the engine is created by :meth:`Database.connect`
(or on entering ``async with``) and released by :meth:`Database.dispose`. The same object can be
connected and disposed several times, and several can live in one process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from ._binds import BIND_NAMES_KEY, BindPlan
from ._engine import create_engine, create_session_factory
from ._exceptions import ConfigurationError, DatabaseUnavailableError
from ._replicas import ReplicaSet, after_write_hook, replica_has_replayed, written_lsn
from ._settings import MosaicSettings
from ._uow import (
    AFTER_WRITE_KEY,
    IsolationLevel,
    Retry,
    _with_retry,
    run_in_transaction,
    transaction,
)
from ._url import mask_url

__all__ = ["Database"]

R = TypeVar("R")
_log = logging.getLogger("sqlmosaic.database")
_DEFAULT_CACHE_SIZE = 500  # SQLAlchemy's create_engine default
#: get, a page, count, update: what a repository's requests compile per model, at least
_STATEMENTS_PER_REPOSITORY = 4


class Database:
    """Engine + session factory, built from settings or handed in.

    ``engine`` / ``session_factory`` let tests and hosts inject their own (for example a factory
    bound to a connection inside an outer transaction); an injected engine is not disposed.

    With ``MOSAIC_READ_REPLICA_URLS`` (and no injected session factory), read-only units of work
    it opens go to the replicas (see :mod:`sqlmosaic._replicas`). With ``MOSAIC_BINDS``, the
    host (:class:`~sqlmosaic.Mosaic`) hands over which tables live where (:meth:`use_binds`)
    and sessions route each table to its database (see :mod:`sqlmosaic._binds`).
    """

    def __init__(
        self,
        settings: MosaicSettings | None = None,
        *,
        engine: AsyncEngine | None = None,
        session_factory: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.settings = settings if settings is not None else MosaicSettings.load()
        self._injected_engine = engine
        self._injected_factory = session_factory
        self._engine: AsyncEngine | None = None
        self._factory: async_sessionmaker[AsyncSession] | None = None
        self._replicas: ReplicaSet | None = None
        self._bind_plan: BindPlan | None = None
        self._bind_tables: dict[str, list[Table]] = {}
        self._binds_known = False
        self._bind_engines: list[AsyncEngine] = []
        self._engine_options: dict[str, Any] = {}

    def size_statement_cache(self, repositories: int) -> None:
        """Called by the host before :meth:`connect`: give every engine's compiled-statement
        cache room for ``repositories`` (4 statements each; at least SQLAlchemy's 500), unless
        ``MOSAIC_QUERY_CACHE_SIZE`` says otherwise. SQLAlchemy's cache is an LRU: too small for
        the host's models, their statements are compiled again and again."""
        if self.settings.query_cache_size is None:
            size = max(_DEFAULT_CACHE_SIZE, _STATEMENTS_PER_REPOSITORY * repositories)
            self._engine_options["query_cache_size"] = size

    @property
    def replica_engines(self) -> list[AsyncEngine]:
        """The engines of the read replicas (none before :meth:`connect`)."""
        return [] if self._replicas is None else list(self._replicas.engines)

    def use_binds(self, plan: BindPlan | None, tables: dict[str, list[Table]]) -> None:
        """Route ``tables[url]`` to a database of its own at ``url`` (``plan``: from
        :func:`~sqlmosaic._binds.plan_binds`). Called by the host before :meth:`connect`."""
        if self._factory is not None:
            raise ConfigurationError("binds must be set before connect()", setting="MOSAIC_BINDS")
        self._bind_plan, self._bind_tables, self._binds_known = plan, tables, True

    # ----------------------------------------------------------------- lifecycle

    async def connect(self) -> Self:
        """Create the engine (unless one was injected) and the session factory. Idempotent."""
        if self._factory is not None:
            return self
        if self._injected_engine is not None:
            self._engine = self._injected_engine
        elif self._injected_factory is None:
            self._engine = create_engine(self.settings, **self._engine_options)
            _log.info("engine created for %s", self.settings.masked_url)
        if self._injected_factory is not None:
            self._factory = self._injected_factory  # routing is its maker's business
            return self
        assert self._engine is not None
        options = self._bind_options()
        if self.settings.read_replica_urls:
            # writing units of work (also on a session from this factory handed to
            # ``transaction()`` by a host) remember their commit's WAL position
            options.setdefault("info", {})[AFTER_WRITE_KEY] = after_write_hook(self._engine)
            self._factory = create_session_factory(self._engine, **options)
            self._replicas = ReplicaSet(
                [
                    create_engine(
                        self.settings.model_copy(update={"database_url": url}),
                        **self._engine_options,
                    )
                    for url in self.settings.read_replica_urls
                ],
                retry_after=self.settings.read_replica_retry_after,
            )
            _log.info("read replicas: %s", ", ".join(self.settings.masked_replica_urls))
        else:
            self._factory = create_session_factory(self._engine, **options)
        return self

    def _bind_options(self) -> dict[str, Any]:
        """Session factory options routing the bound plugins' tables (engines created here)."""
        if self.settings.binds and not self._binds_known:
            raise ConfigurationError(
                "MOSAIC_BINDS routes plugins' tables, which only the host knows: use Mosaic, "
                "or call Database.use_binds() before connect()",
                setting="MOSAIC_BINDS",
            )
        plan = self._bind_plan
        if plan is None:
            return {}
        binds: dict[Table, AsyncEngine] = {}
        for url in plan.urls:
            engine = create_engine(
                self.settings.model_copy(update={"database_url": url}), **self._engine_options
            )
            self._bind_engines.append(engine)
            binds.update(dict.fromkeys(self._bind_tables.get(url, ()), engine))
        _log.info("binds: %s", ", ".join(f"{p}={u}" for p, u in self.masked_binds().items()))
        return {
            "binds": binds,  # the factory's sessions then refuse cross-bind writes
            "info": {BIND_NAMES_KEY: plan.names()},
        }

    def masked_binds(self) -> dict[str, str]:
        """``{plugin: masked URL}`` of the plugins whose tables are on another database."""
        plan = self._bind_plan
        return {} if plan is None else {p: mask_url(u) for p, u in plan.plugin_urls.items()}

    @property
    def bind_engines(self) -> list[AsyncEngine]:
        """The engines of the per-plugin binds (none before :meth:`connect`)."""
        return list(self._bind_engines)

    async def dispose(self) -> None:
        """Dispose the engine this object created (an injected one is left alone)."""
        engine, self._engine, self._factory = self._engine, None, None
        replicas, self._replicas = self._replicas, None
        if replicas is not None:
            await replicas.dispose()
        bound, self._bind_engines = self._bind_engines, []
        for bind_engine in bound:
            await bind_engine.dispose()
        if engine is not None and engine is not self._injected_engine:
            await engine.dispose()
            _log.info("engine disposed for %s", self.settings.masked_url)

    async def __aenter__(self) -> Self:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.dispose()

    @property
    def connected(self) -> bool:
        return self._factory is not None

    @property
    def engine(self) -> AsyncEngine:
        """The engine; :class:`ConfigurationError` before :meth:`connect`."""
        if self._engine is None:
            if self._factory is not None:
                bind = self._factory.kw.get("bind")
                if isinstance(bind, AsyncEngine):
                    return bind
                if isinstance(bind, AsyncConnection):
                    return bind.engine
            raise ConfigurationError("the database is not connected: call connect() first")
        return self._engine

    @property
    def session_factory(self) -> async_sessionmaker[AsyncSession]:
        """The session factory (``expire_on_commit=False``)."""
        if self._factory is None:
            raise ConfigurationError("the database is not connected: call connect() first")
        return self._factory

    # ----------------------------------------------------------------- sessions

    def session(self) -> AsyncSession:
        """A new session; use as ``async with db.session() as session``."""
        return self.session_factory()

    async def get_db_session(self) -> AsyncGenerator[AsyncSession, None]:
        """Yield one session and close it afterwards (FastAPI: ``Depends(db.get_db_session)``).

        It never commits: the service layer does, through a unit of work. Whatever is left
        uncommitted is rolled back when the session closes.
        """
        async with self.session_factory() as session:
            yield session

    @asynccontextmanager
    async def transaction(
        self,
        *,
        isolation_level: IsolationLevel | None = None,
        read_only: bool = False,
    ) -> AsyncIterator[AsyncSession]:
        """A new session running one unit of work (commit on success, rollback on error).

        Read-only units go to a read replica when there are any (a replica failing inside the
        block: :class:`DatabaseUnavailableError`, and the replica leaves the rotation).
        """
        if read_only and self._replicas is not None:
            stack, session, on_replica = await self._open_read_only(isolation_level)
            try:
                async with stack:
                    yield session
            except DatabaseUnavailableError as exc:
                if on_replica is not None:
                    self._replicas.mark_down(on_replica, exc)
                raise
            return
        async with (
            self.session_factory() as session,
            transaction(session, isolation_level=isolation_level, read_only=read_only),
        ):
            yield session

    async def _open_read_only(
        self, isolation_level: IsolationLevel | None
    ) -> tuple[AsyncExitStack, AsyncSession, AsyncEngine | None]:
        """Begin a read-only unit on the next healthy replica that has replayed this context's
        last write, else on the primary: the open stack, its session and the replica used."""
        assert self._replicas is not None
        lsn = written_lsn()
        for engine in self._replicas.candidates():
            stack = AsyncExitStack()
            try:
                session = await stack.enter_async_context(self.session_factory(bind=engine))
                await stack.enter_async_context(
                    transaction(session, isolation_level=isolation_level, read_only=True)
                )
                if lsn is None or await replica_has_replayed(session, lsn):
                    return stack, session, engine
            except DatabaseUnavailableError as exc:
                self._replicas.mark_down(engine, exc)
            await stack.aclose()
        stack = AsyncExitStack()
        session = await stack.enter_async_context(self.session_factory())
        await stack.enter_async_context(
            transaction(session, isolation_level=isolation_level, read_only=True)
        )
        return stack, session, None

    async def _run_read_only(
        self,
        func: Callable[[AsyncSession], Awaitable[R]],
        retry: Retry | None,
        isolation_level: IsolationLevel | None,
    ) -> R:
        """``run(..., read_only=True)`` with replicas: a replica failing mid-unit is retried on
        the primary once (the unit only read: running it again is safe)."""

        replicas = self._replicas
        assert replicas is not None

        async def attempt() -> R:
            stack, session, replica = await self._open_read_only(isolation_level)
            try:
                async with stack:
                    return await func(session)
            except DatabaseUnavailableError as exc:
                if replica is None:
                    raise
                replicas.mark_down(replica, exc)
            _log.info("read-only unit retried on the primary after its replica failed")
            return await run_in_transaction(
                self.session_factory, func, isolation_level=isolation_level, read_only=True
            )

        name = getattr(func, "__qualname__", repr(func))
        return await _with_retry(attempt, retry or Retry(attempts=1), name)

    async def run(
        self,
        func: Callable[[AsyncSession], Awaitable[R]],
        *,
        retry: Retry | None = None,
        isolation_level: IsolationLevel | None = None,
        read_only: bool = False,
    ) -> R:
        """Run ``func(session)`` as a unit of work in a fresh session per attempt.

        Read-only with replicas: on a replica; if the replica fails meanwhile, ``func`` runs
        again on the primary (it only read), so the caller sees no error.
        """
        if read_only and self._replicas is not None:
            return await self._run_read_only(func, retry, isolation_level)
        return await run_in_transaction(
            self.session_factory,
            func,
            retry=retry,
            isolation_level=isolation_level,
            read_only=read_only,
        )

    def __repr__(self) -> str:
        state = "connected" if self.connected else "not connected"
        return f"<Database {self.settings.masked_url} ({state})>"

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"url": self.settings.masked_url, "connected": self.connected}
        if self.settings.read_replica_urls:
            described["read_replicas"] = self.settings.masked_replica_urls
        if self._bind_plan is not None:
            described["binds"] = self.masked_binds()
        return described
