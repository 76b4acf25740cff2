"""Read replicas: read-only units of work go to a streaming replica, everything else to the primary.

Routing (done by :class:`~sqlmosaic.Database`, so plugins and repositories never see it):

- a read-only unit of work opened by the ``Database`` (``transaction(read_only=True)``,
  ``run(..., read_only=True)``, and through them ``Mosaic.unit_of_work(read_only=True)`` and
  ``Mosaic.run(..., read_only=True)``) goes to the next replica, round-robin;
- a replica that fails to connect or to begin is marked down for
  ``MOSAIC_READ_REPLICA_RETRY_AFTER`` seconds and the next one is tried; with none healthy the
  unit runs on the primary;
- every writing unit, and every read inside one, runs on the primary.

Read-your-writes by WAL position, not by a time window: after a writing unit of work commits,
the primary's ``pg_current_wal_insert_lsn()`` (at or past the end of the commit record, even with
``synchronous_commit=off``) is remembered in a context variable, i.e. for the rest of the current
task (one request, in an ASGI server). A later read-only unit in that context checks, inside its
transaction on the replica, ``pg_last_wal_replay_lsn() >= that position``; a replica behind it is
skipped (no waiting), ending on the primary. A sticky window is a guess about lag; the position
is exact, and costs one query after each write and one per read that follows a write.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from ._url import mask_url

__all__ = [
    "ReplicaSet",
    "after_write_hook",
    "remember_write",
    "replica_has_replayed",
    "written_lsn",
]

_log = logging.getLogger("sqlmosaic.replicas")

#: WAL position (an int) of the last commit made by a writing unit of work in this context.
_WRITTEN_LSN: ContextVar[int | None] = ContextVar("mosaic_written_lsn", default=None)


#: Larger than any WAL position: no replica has replayed it.
_UNREACHABLE = 1 << 64


def written_lsn() -> int | None:
    """The WAL position a read in this context must see (None: no write here yet)."""
    return _WRITTEN_LSN.get()


def _parse_lsn(value: str) -> int:
    high, _, low = value.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


async def remember_write(primary: AsyncEngine) -> None:
    """After a commit on the primary: remember its WAL position for this context's reads.

    On a connection of its own, so the committed session is left as it is (a rollback there
    would expire the objects the unit returned). If the position cannot be read, every later
    read in this context goes to the primary.
    """
    try:
        async with primary.connect() as connection:
            value = await connection.scalar(text("SELECT pg_current_wal_insert_lsn()::text"))
        lsn = _parse_lsn(str(value))
    except Exception as exc:
        _log.warning(
            "WAL position unknown after a write (%s): reads use the primary", type(exc).__name__
        )
        lsn = _UNREACHABLE
    previous = _WRITTEN_LSN.get()
    if previous is None or lsn > previous:
        _WRITTEN_LSN.set(lsn)


def after_write_hook(primary: AsyncEngine) -> Callable[[], Awaitable[None]]:
    """What a writing unit of work calls after its commit (kept in the session's ``info``)."""

    async def hook() -> None:
        await remember_write(primary)

    return hook


async def replica_has_replayed(session: AsyncSession, lsn: int) -> bool:
    """Whether the replica ``session`` is on has replayed the WAL up to ``lsn``."""
    connection = await session.connection()
    replayed = await connection.scalar(text("SELECT pg_last_wal_replay_lsn()::text"))
    return replayed is not None and _parse_lsn(str(replayed)) >= lsn


@dataclass(eq=False)
class ReplicaSet:
    """The replicas' engines, their round-robin order and which are marked down until when."""

    engines: list[AsyncEngine]
    retry_after: float
    _turn: itertools.count[int] = field(default_factory=itertools.count)
    _down_until: dict[int, float] = field(default_factory=dict)

    def candidates(self) -> list[AsyncEngine]:
        """The healthy replicas, starting with the next one in round-robin order."""
        count = len(self.engines)
        start = next(self._turn) % count
        now = time.monotonic()
        ordered = [self.engines[(start + i) % count] for i in range(count)]
        return [e for e in ordered if self._down_until.get(id(e), 0.0) <= now]

    def mark_down(self, engine: AsyncEngine, reason: BaseException) -> None:
        self._down_until[id(engine)] = time.monotonic() + self.retry_after
        _log.warning(
            "read replica %s marked down for %gs: %s",
            mask_url(engine.url),
            self.retry_after,
            type(reason).__name__,
        )

    def owns(self, engine: object) -> bool:
        return any(engine is e for e in self.engines)

    async def dispose(self) -> None:
        for engine in self.engines:
            await engine.dispose()
