"""A server that stops answering: a typed error, and teardown never waits on the dead peer again.

The proxy turns into a black hole (sockets open, nothing relayed, every message the client
still sends recorded). Before the fix (issue 12, item 2) a unit of work let asyncpg's bare
``TimeoutError`` out, after ``command_timeout`` + 2 s: SQLAlchemy closed the timed-out
connection "gracefully", waiting up to 2 s for the dead peer. The proof here is deterministic,
not a stopwatch: the error is typed; the statement's cancel request still goes out (a statement
left running on a live server would keep its locks); the client sends the hung connection no
ROLLBACK (no second round trip for a whole timeout), closes its socket (discarded) and only
that one, and the pool has nothing checked out. The seconds the caller waits, teardown
included (the teardown's grace is 0.25 s, SQLAlchemy's 2 s), are measured by
``bench/run_timeouts.py`` (figures in docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

from sqlmosaic import (
    CommitOutcomeUnknownError,
    Database,
    DatabaseUnavailableError,
    MosaicSettings,
)

from .proxy import PgProxy

pytestmark = pytest.mark.mosaic_backends("postgresql")

TIMEOUT = 0.5
#: the first message on asyncpg's cancel connection: CancelRequest, or SSLRequest first (the
#: default sslmode "prefer"; a hung server never answers it, so the CancelRequest never follows)
_CANCEL_OPENINGS = {(16, 80877102), (8, 80877103)}


async def _pid(session: AsyncSession) -> int:
    connection = await session.connection()
    return int(await connection.scalar(text("SELECT pg_backend_pid()")))


@pytest.fixture
async def db(proxied_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Database]:
    timeout = getattr(request, "param", TIMEOUT)
    settings = MosaicSettings.load(
        database_url=proxied_url, command_timeout=timeout, pool_size=2, max_overflow=0
    )
    async with Database(settings) as database:
        yield database


def _opens_a_cancel(message: bytes) -> bool:
    return len(message) >= 8 and struct.unpack("!ii", message[:8]) in _CANCEL_OPENINGS


def _said_to_hung_peer(proxy: PgProxy) -> list[bytes]:
    """The messages sent on the relayed connections while hung, minus asyncpg's cancel request
    (sent on a new connection of its own when a statement times out or is cancelled)."""
    return [m for m in proxy.sent_while_hung if not _opens_a_cancel(m)]


def _cancel_requests(proxy: PgProxy) -> list[bytes]:
    """Cancel requests begun while hung: asyncpg asks the server to stop the statement (on a
    live server it would otherwise run on, holding its locks, until the server notices that the
    socket has gone)."""
    return [m for m in proxy.sent_while_hung if _opens_a_cancel(m)]


def _rollbacks(messages: list[bytes]) -> list[bytes]:
    """ROLLBACKs sent to the hung peer: each would wait for an answer that never comes.
    (asyncpg's abort writes a Terminate message just before dropping the socket; nothing
    waits for it.)"""
    return [m for m in messages if b"ROLLBACK" in m.upper()]


async def _discarded(proxy: PgProxy, db: Database, *, kept: int = 0) -> None:
    """The hung connection's socket is closed by the client; ``kept`` other connections stay
    open (hang guard only: 30 s)."""
    async with asyncio.timeout(30):
        await proxy.connections_closed(keep=kept)
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def _two_pids(db: Database) -> set[int]:
    """Check out both pooled connections at once; their backend pids."""
    barrier = asyncio.Barrier(2)

    async def hold() -> int:
        async with db.session() as session:
            pid = await _pid(session)
            await barrier.wait()
            return pid

    return set(await asyncio.gather(hold(), hold()))


async def test_a_statement_on_a_hung_server_is_a_typed_error_and_teardown_sends_nothing(
    db: Database, proxy: PgProxy
) -> None:
    warm = await _two_pids(db)  # both pooled connections used
    hung: list[int] = []

    async def unit() -> None:
        async with db.transaction() as session:
            hung.append(await _pid(session))
            proxy.hang()
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]

    with pytest.raises(DatabaseUnavailableError, match="command_timeout") as caught:
        await unit()
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert not isinstance(caught.value, CommitOutcomeUnknownError)
    await _discarded(proxy, db, kept=1)
    assert _rollbacks(_said_to_hung_peer(proxy)) == []
    assert len(_cancel_requests(proxy)) == 1, proxy.sent_while_hung
    proxy.resume()
    after = await _two_pids(db)
    assert hung[0] not in after  # the timed-out connection was replaced ...
    assert warm - set(hung) <= after  # ... and only it: the other pooled one was kept


async def test_a_commit_on_a_hung_server_is_outcome_unknown_and_teardown_sends_nothing(
    db: Database, proxy: PgProxy
) -> None:

    async def unit() -> None:
        async with db.transaction() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            proxy.hang()  # the next message is COMMIT

    with pytest.raises(CommitOutcomeUnknownError) as caught:
        await unit()
    assert isinstance(caught.value.__cause__, DatabaseUnavailableError)
    await _discarded(proxy, db)
    said = _said_to_hung_peer(proxy)
    assert any(b"COMMIT" in m.upper() for m in said), said
    assert _rollbacks(said) == []


async def test_a_plain_read_on_a_hung_server_is_a_typed_error(db: Database, proxy: PgProxy) -> None:
    async with db.session() as session:
        await _pid(session)
        proxy.hang()
        with pytest.raises(DatabaseUnavailableError, match="command_timeout"):
            await session.exec(text("SELECT 2"))  # type: ignore[call-overload]
    await _discarded(proxy, db)
    assert _rollbacks(_said_to_hung_peer(proxy)) == []


@pytest.mark.parametrize("db", [None], indirect=True, ids=["no command_timeout"])
async def test_without_a_timeout_the_callers_own_bound_tears_down_at_once(
    db: Database, proxy: PgProxy
) -> None:
    """The default: no client-side bound (docs/reliability.md says why); the caller's own
    ``asyncio.timeout`` (a host's request timeout) cancels, the cancel request goes out, and
    the cancelled connection is discarded."""
    async with db.session() as session:
        await _pid(session)

    async def unit() -> None:
        async with asyncio.timeout(TIMEOUT), db.transaction() as session:
            proxy.hang()
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]

    with pytest.raises(TimeoutError):
        await unit()
    await _discarded(proxy, db)
    assert _rollbacks(_said_to_hung_peer(proxy)) == []
    assert len(_cancel_requests(proxy)) == 1, proxy.sent_while_hung
