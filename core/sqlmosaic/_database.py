"""``Database`` owns one async engine and its session factory.

Nothing connects at construction or import: the engine is created by :meth:`Database.connect`
(or on entering ``async with``) and released by :meth:`Database.dispose`. The same object can be
connected and disposed several times, and several can live in one process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from ._engine import create_engine, create_session_factory
from ._exceptions import ConfigurationError
from ._settings import MosaicSettings
from ._uow import IsolationLevel, Retry, run_in_transaction, transaction

__all__ = ["Database"]

R = TypeVar("R")
_log = logging.getLogger("sqlmosaic.database")


class Database:
    """Engine + session factory, built from settings or handed in.

    ``engine`` / ``session_factory`` let tests and hosts inject their own (for example a factory
    bound to a connection inside an outer transaction); an injected engine is not disposed.
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

    # ----------------------------------------------------------------- lifecycle

    async def connect(self) -> Self:
        """Create the engine (unless one was injected) and the session factory. Idempotent."""
        if self._factory is not None:
            return self
        if self._injected_engine is not None:
            self._engine = self._injected_engine
        elif self._injected_factory is None:
            self._engine = create_engine(self.settings)
            _log.info("engine created for %s", self.settings.masked_url)
        self._factory = self._injected_factory or create_session_factory(self._engine)
        return self

    async def dispose(self) -> None:
        """Dispose the engine this object created (an injected one is left alone)."""
        engine, self._engine, self._factory = self._engine, None, None
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
        """A new session running one unit of work (commit on success, rollback on error)."""
        async with (
            self.session_factory() as session,
            transaction(session, isolation_level=isolation_level, read_only=read_only),
        ):
            yield session

    async def run(
        self,
        func: Callable[[AsyncSession], Awaitable[R]],
        *,
        retry: Retry | None = None,
        isolation_level: IsolationLevel | None = None,
        read_only: bool = False,
    ) -> R:
        """Run ``func(session)`` as a unit of work in a fresh session per attempt."""
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
        return {"url": self.settings.masked_url, "connected": self.connected}
