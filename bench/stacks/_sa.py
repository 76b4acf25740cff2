"""Shared engine set-up and statement counting for every SQLAlchemy-based stack."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.stacks._base import POOL_SIZE, SQLITE_PRAGMAS, DbTarget, Stack


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def create_bench_engine(db: DbTarget, **kwargs: Any) -> AsyncEngine:
    """The engine every SQLAlchemy stack uses: same pool (``POOL_SIZE``, no overflow, no
    pre-ping), default prepared-statement cache on asyncpg, same SQLite pragmas."""
    kwargs.setdefault("pool_pre_ping", False)
    engine = create_async_engine(db.sa_url, pool_size=POOL_SIZE, max_overflow=0, **kwargs)
    if db.backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    return engine


class SAStack(Stack):
    """Base for SQLAlchemy stacks: owns ``self.engine`` and counts statements with engine events.

    Subclasses implement :meth:`on_setup` (build session factories etc. from ``self.engine``)
    and the operations. Override :meth:`create_engine` to get the engine elsewhere (it must keep
    the pool settings of :func:`create_bench_engine`).
    """

    engine: AsyncEngine

    async def setup(self, db: DbTarget) -> None:
        self.engine = self.create_engine(db)
        await self.on_setup()

    def create_engine(self, db: DbTarget) -> AsyncEngine:
        return create_bench_engine(db)

    async def on_setup(self) -> None:
        """Build session factories and anything else reused across operations."""

    async def teardown(self) -> None:
        await self.engine.dispose()

    # -- counting: listeners are attached only while counting (untimed warm-up) --------------
    def _on_statement(self, *_args: Any) -> None:
        self.counter.statements += 1

    def _on_tx(self, *_args: Any) -> None:
        self.counter.tx += 1

    def _listeners(self) -> list[tuple[str, Any]]:
        return [
            ("before_cursor_execute", self._on_statement),
            ("begin", self._on_tx),
            ("commit", self._on_tx),
            ("rollback", self._on_tx),
        ]

    def start_counting(self) -> None:
        super().start_counting()
        for name, fn in self._listeners():
            event.listen(self.engine.sync_engine, name, fn)

    def stop_counting(self) -> None:
        super().stop_counting()
        for name, fn in self._listeners():
            event.remove(self.engine.sync_engine, name, fn)
