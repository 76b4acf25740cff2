"""``MOSAIC_WARM_UP``: at the end of :meth:`Mosaic.start() <sqlmosaic.Mosaic.start>`, pay
SQLAlchemy's first-use costs before a request does.

A process's first ORM statement sets up what SQLAlchemy builds once (~1.5 ms), and the first
use of each statement compiles it into its engine's statement cache (~1-2 ms per model). With
the warm-up, every repository's primary-key read and default page (``list()``) run once at
start, on the primary (each model on its own bind) and on each read replica: their first use
by a request is served from the cache, as their second is. Writes are never warmed (nothing is
written). The host sizes the caches to hold these statements (``Database.size_statement_cache``).

How: the very statements the repository runs (``_plans``' primary-key SELECT, the page of
``_sorted_select``), executed through a plain session of the host as a request would, with keys
that match no row (``NULL``) and ``LIMIT 0``. Each repository gets its own short transaction,
rolled back: no lock outlives its two reads. What the warm-up never does is make the start
fail or wait:

- a table that does not exist (yet) is skipped: the start may come before the migrations;
- on PostgreSQL each read waits at most ``LOCK_TIMEOUT`` for a table lock (a migration's
  ``ALTER TABLE`` holds one): past it, that repository is skipped (logged at INFO);
- a database (primary, bind or replica) that cannot be reached is skipped with its
  repositories, logged at INFO: the host starts and answers 503 as it would without warm-up
  (the connection attempt itself waits up to ``MOSAIC_CONNECT_TIMEOUT``);
- any other error skips its repository; one WARNING at the end counts them and names the
  first (the exception's type only: no SQL, no values).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from ._repository import Repository
from ._translate import sqlstate_of
from ._url import mask_url

__all__ = ["LOCK_TIMEOUT", "warm_up"]

_log = logging.getLogger("sqlmosaic.host")

#: PostgreSQL ``lock_timeout`` of the warm-up's reads: a table locked longer is skipped.
LOCK_TIMEOUT = "50ms"
_LOCK_NOT_AVAILABLE = "55P03"

Repositories = Mapping[str, type[Repository[Any]]]


async def warm_up(
    session_factory: async_sessionmaker[AsyncSession],
    repositories: Repositories,
    *,
    replicas: Sequence[AsyncEngine] = (),
) -> list[str]:
    """Warm ``repositories`` (see the module docstring) through ``session_factory``, then on
    each of ``replicas``; returns the keys warmed through ``session_factory``, in key order."""
    warmed = await _warm_through(session_factory, repositories, "the primary", None)
    for engine in replicas:

        def on_replica(engine: AsyncEngine = engine) -> AsyncSession:
            return session_factory(bind=engine)

        await _warm_through(on_replica, repositories, mask_url(engine.url), engine)
    return warmed


async def _warm_through(
    new_session: Callable[[], AsyncSession],
    repositories: Repositories,
    label: str,
    only_engine: AsyncEngine | None,
) -> list[str]:
    """Warm each repository in its own session from ``new_session``; with ``only_engine``
    (a replica), only the repositories whose tables are on it."""
    warmed: list[str] = []
    tables: dict[tuple[Any, str | None], set[str]] = {}  # (engine, schema) -> its table names
    unreachable: set[Any] = set()  # engines that did not connect
    locked: list[str] = []
    failed: list[tuple[str, BaseException]] = []
    for key in sorted(repositories):
        repo = repositories[key]
        mapper = sa_inspect(repo.model)
        async with new_session() as session:
            engine = session.sync_session.get_bind(mapper=mapper)
            if engine in unreachable or (
                only_engine is not None and engine is not only_engine.sync_engine
            ):
                continue
            try:
                conn = await session.connection(bind_arguments={"mapper": mapper})
            except Exception as exc:
                unreachable.add(engine)
                _log.info(
                    "warm-up: no connection to %s (%s); its repositories are not warmed",
                    mask_url(engine.engine.url),
                    type(exc).__name__,
                )
                continue
            try:
                if conn.dialect.name == "postgresql":
                    await conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                if not await _table_exists(conn, repo.table(), tables):
                    continue
                await _warm_one(session, repo)
            except sa_exc.DBAPIError as exc:
                if sqlstate_of(exc) == _LOCK_NOT_AVAILABLE:
                    locked.append(key)
                else:
                    failed.append((key, exc))
                continue
            except Exception as exc:  # never the start's failure (BaseException goes through)
                failed.append((key, exc))
                continue
        warmed.append(key)
    if locked:
        _log.info(
            "warm-up on %s: %d repositories skipped, their tables were locked (a migration "
            "running?): %s",
            label,
            len(locked),
            ", ".join(locked),
        )
    if failed:
        first, error = failed[0]
        _log.warning(
            "warm-up on %s: %d repositories not warmed, the first %s (%s)",
            label,
            len(failed),
            first,
            type(error).__name__,
        )
    _log.debug("warm-up on %s: %d repositories", label, len(warmed))
    return warmed


async def _table_exists(
    conn: AsyncConnection, table: Table, tables: dict[tuple[Any, str | None], set[str]]
) -> bool:
    found = tables.get((conn.engine, table.schema))
    if found is None:

        def names(sync: Connection) -> set[str]:
            inspector = sa_inspect(sync)
            found = {
                *inspector.get_table_names(table.schema),
                *inspector.get_view_names(table.schema),
            }
            if sync.dialect.name == "postgresql":
                found.update(inspector.get_materialized_view_names(table.schema))
            return found

        found = tables[(conn.engine, table.schema)] = await conn.run_sync(names)
    return table.name in found


async def _warm_one(session: AsyncSession, repo: type[Repository[Any]]) -> None:
    plan = repo._plan()
    # the statement and parameters lookup() runs; NULL keys match no row
    result = await session.exec(
        plan.get_statement, params=plan.get_params((None,) * len(plan.pk_params))
    )
    result.unique().all()
    page = repo._sorted_select(None).statement
    (await session.exec(page, params={"mosaic_limit": 0, "mosaic_offset": 0})).all()
