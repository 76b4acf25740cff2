"""Warm-up at :meth:`Mosaic.start() <sqlmosaic.Mosaic.start>`: pay SQLAlchemy's first-use costs
before the first request does.

The first statement a process runs through the ORM sets up state SQLAlchemy builds once
(dispatchers, cache-key generators, type adaptations: ~1.5 ms), and the first use of each
statement compiles it into the engine's statement cache (~1-2 ms per model). Both would
otherwise be paid by a request.

Always: the primary-key read of the first repository (in key order) whose table exists, and
an empty read-only unit of work: the one-time part, for every model.
With ``MOSAIC_WARM_UP=true``: every repository's primary-key read and its default page
(``list()``), so the first ``get``/``list()`` of each model is served from the statement cache,
as its second is. Writes are never warmed (nothing is written).

How: the same cached statements the repository runs, executed as a request would through a
plain session of the host (so each model's own bind), with keys that match no row (``NULL``) and
``LIMIT 0``; the session is rolled back. A table that does not exist yet (migrations not applied)
is skipped; a database error stops the warm-up with a warning, never the start. A database that
cannot be reached skips it (the host starts and answers 503 until the database is back, as
without the warm-up; the wait for the connection is bounded by ``MOSAIC_CONNECT_TIMEOUT``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from ._exceptions import MosaicError
from ._repository import Repository
from ._uow import transaction

__all__ = ["warm_up"]

_log = logging.getLogger("sqlmosaic.host")


async def warm_up(
    session_factory: async_sessionmaker[AsyncSession],
    repositories: Mapping[str, type[Repository[Any]]],
    *,
    every_repository: bool,
) -> list[str]:
    """Warm the statements of ``repositories`` (see the module docstring); returns the keys of
    the repositories warmed, in order."""
    warmed: list[str] = []
    tables: dict[tuple[Any, str | None], set[str]] = {}  # (engine, schema) -> its table names
    async with session_factory() as session:
        for key in sorted(repositories):
            repo = repositories[key]
            try:
                conn = await session.connection(bind_arguments={"mapper": sa_inspect(repo.model)})
            except (sa_exc.SQLAlchemyError, OSError) as exc:
                # the database is down or refuses us: the host starts anyway, as it would
                # without the warm-up, and its requests get DatabaseUnavailableError (503)
                _log.info("warm-up skipped: no connection (%s)", type(exc).__name__)
                break
            try:
                if not await _table_exists(conn, repo.table(), tables):
                    continue
                await _warm_one(session, repo, every_repository)
            except (sa_exc.SQLAlchemyError, OSError) as exc:
                # no message text: the SQL is ours, but a driver may quote what it was sent
                _log.warning(
                    "warm-up stopped at repository %s (%s); %d warmed before it",
                    key,
                    type(exc).__name__,
                    len(warmed),
                )
                break
            warmed.append(key)
            if not every_repository:
                break
        await session.rollback()
    if warmed:
        await _warm_unit_of_work(session_factory)
    _log.debug("warm-up: %d repositories", len(warmed))
    return warmed


async def _warm_unit_of_work(session_factory: async_sessionmaker[AsyncSession]) -> None:
    """The path of a request's unit of work (its BEGIN options, its end), once: read-only, so
    no write lock is taken at start (SQLite's writing units begin IMMEDIATE)."""
    try:
        async with session_factory() as session, transaction(session, read_only=True):
            await session.connection()
    except (MosaicError, sa_exc.SQLAlchemyError, OSError) as exc:
        _log.warning("warm-up of the unit of work failed (%s)", type(exc).__name__)


async def _table_exists(
    conn: AsyncConnection, table: Table, tables: dict[tuple[Any, str | None], set[str]]
) -> bool:
    found = tables.get((conn.engine, table.schema))
    if found is None:

        def names(sync: Connection) -> set[str]:
            inspector = sa_inspect(sync)
            return {
                *inspector.get_table_names(table.schema),
                *inspector.get_view_names(table.schema),
            }

        found = tables[(conn.engine, table.schema)] = await conn.run_sync(names)
    return table.name in found


async def _warm_one(session: AsyncSession, repo: type[Repository[Any]], with_page: bool) -> None:
    plan = repo._plan()
    # the statement and parameters lookup() runs; NULL keys match no row
    result = await session.exec(
        plan.get_statement, params=plan.get_params((None,) * len(plan.pk_params))
    )
    result.unique().all()
    if with_page:
        page = repo._sorted_select(None).statement
        (await session.exec(page, params={"mosaic_limit": 0, "mosaic_offset": 0})).all()
