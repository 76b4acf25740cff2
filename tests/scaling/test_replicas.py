"""Read replicas on real servers: a private primary and two streaming replicas (``cluster``).

Routing of read-only units of work (round-robin, health, fallback), writes and reads inside
writing units on the primary, read-your-writes by WAL position (proven with replay paused, so
the replica is certainly behind), and a replica dying mid-unit.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlmodel.ext.asyncio.session import AsyncSession

from mosaic_accounts import User, UserRepository
from sqlmosaic import DatabaseUnavailableError, Mosaic, MosaicSettings, UnitOfWork

from .conftest import Cluster

pytestmark = pytest.mark.parametrize("mosaic_backend", ["postgresql"], indirect=True)


def in_fresh_context(factory: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
    """Run as a new request would: a task with an empty context (no earlier write)."""
    return asyncio.create_task(factory(), context=contextvars.Context())  # type: ignore[arg-type]


async def where(session: AsyncSession) -> tuple[bool, int]:
    """(on a replica?, the server's port) for the server ``session`` is on."""
    connection = await session.connection()
    row = (await connection.execute(text("SELECT pg_is_in_recovery(), inet_server_port()"))).one()
    return bool(row[0]), int(row[1])


def dead_url(port: int) -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/app"


async def host(primary: str, replicas: list[str], **overrides: Any) -> Mosaic:
    settings = MosaicSettings.load(
        database_url=primary, read_replica_urls=",".join(replicas), **overrides
    )
    return await Mosaic(settings).start()


@pytest.fixture
async def mosaic(cluster: Cluster, mosaic_backend: str) -> AsyncIterator[Mosaic]:
    started = await host(cluster.primary_url, cluster.replica_urls())
    try:
        yield started
    finally:
        await started.stop()


async def test_read_only_units_go_round_robin_to_the_replicas(
    mosaic: Mosaic, cluster: Cluster
) -> None:
    async def reads() -> list[tuple[bool, int]]:
        seen = []
        for _ in range(4):
            async with mosaic.unit_of_work(read_only=True) as uow:
                seen.append(await where(uow.session))
        async with mosaic.transaction(read_only=True) as session:
            seen.append(await where(session))
        seen.append(await mosaic.run(lambda uow: where(uow.session), read_only=True))
        return seen

    seen = await in_fresh_context(reads)
    ports = {replica.server.port for replica in cluster.replicas}
    assert all(on_replica for on_replica, _ in seen), seen
    assert {port for _, port in seen} == ports
    assert seen[0][1] != seen[1][1]  # alternating
    assert seen[0][1] == seen[2][1]


async def test_writes_and_reads_inside_writing_units_use_the_primary(
    mosaic: Mosaic, cluster: Cluster
) -> None:
    async def work() -> list[tuple[bool, int]]:
        seen = []
        async with mosaic.unit_of_work() as uow:
            seen.append(await where(uow.session))
            await uow.repository(UserRepository).add(User(email="w@example.com", name="W"))
            seen.append(await where(uow.session))
        seen.append(await mosaic.run(lambda uow: where(uow.session)))
        return seen

    seen = await in_fresh_context(work)
    assert seen == [(False, cluster.primary.port)] * 3


async def test_read_your_writes_with_replay_paused(mosaic: Mosaic, cluster: Cluster) -> None:
    """Replay is paused on both replicas: they certainly lack the write. The same context's
    read still sees it (served by the primary); another context's read goes to a replica and
    does not (read-your-writes is per context, i.e. per request)."""
    admins = [await _connect(replica.url("app")) for replica in cluster.replicas]
    try:
        for admin in admins:
            await admin.execute("SELECT pg_wal_replay_pause()")

        async def write_then_read() -> tuple[bool, bool]:
            async with mosaic.unit_of_work() as uow:
                await uow.repository(UserRepository).add(User(email="ryw@example.com", name="R"))
            async with mosaic.unit_of_work(read_only=True) as uow:
                found = await uow.repository(UserRepository).exists(
                    where={"email": "ryw@example.com"}
                )
                on_replica, _ = await where(uow.session)
            return found, on_replica

        assert await in_fresh_context(write_then_read) == (True, False)

        async def write_on_the_request_session_then_read() -> tuple[bool, bool, set[str]]:
            # the integrations' pattern: a request session, a unit of work on it
            async with mosaic.database.session() as session:
                async with mosaic.unit_of_work(session) as uow:
                    user = await uow.repository(UserRepository).add(
                        User(email="ryw2@example.com", name="R2")
                    )
                expired = set(inspect(user).expired_attributes)  # the unit's objects stay loaded
            async with mosaic.unit_of_work(read_only=True) as uow:
                found = await uow.repository(UserRepository).exists(
                    where={"email": "ryw2@example.com"}
                )
                on_replica, _ = await where(uow.session)
            return found, on_replica, expired

        assert await in_fresh_context(write_on_the_request_session_then_read) == (
            True,
            False,
            set(),
        )

        async def other_request() -> tuple[bool, bool]:
            async with mosaic.unit_of_work(read_only=True) as uow:
                found = await uow.repository(UserRepository).exists(
                    where={"email": "ryw@example.com"}
                )
                on_replica, _ = await where(uow.session)
            return found, on_replica

        assert await in_fresh_context(other_request) == (False, True)
    finally:
        for admin in admins:
            await admin.execute("SELECT pg_wal_replay_resume()")
            await admin.close()


async def _connect(url: str) -> Any:
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host, port=parsed.port, user=parsed.username, database=parsed.database
    )


async def test_no_stale_read_after_write_under_concurrent_requests(mosaic: Mosaic) -> None:
    """200 concurrent write-then-read requests (bounded: the 10,000 figure is in bench/)."""

    async def request(n: int) -> tuple[bool, bool]:
        email = f"req{n}@example.com"
        async with mosaic.unit_of_work() as uow:
            await uow.repository(UserRepository).add(User(email=email, name="Q"))
        async with mosaic.unit_of_work(read_only=True) as uow:
            found = await uow.repository(UserRepository).exists(where={"email": email})
            on_replica, _ = await where(uow.session)
        return found, on_replica

    results: list[tuple[bool, bool]] = []
    for batch in range(10):
        results += await asyncio.gather(
            *(in_fresh_context(lambda n=n: request(n)) for n in range(batch * 20, batch * 20 + 20))
        )
    assert [found for found, _ in results] == [True] * 200


async def test_an_unreachable_replica_is_skipped(
    cluster: Cluster, mosaic_backend: str, refused_port: Callable[[], int]
) -> None:
    mosaic = await host(cluster.primary_url, [dead_url(refused_port()), cluster.replica_urls()[0]])
    try:

        async def reads() -> list[tuple[bool, int]]:
            seen = []
            for _ in range(4):
                async with mosaic.unit_of_work(read_only=True) as uow:
                    seen.append(await where(uow.session))
            return seen

        seen = await in_fresh_context(reads)
        assert seen == [(True, cluster.replicas[0].server.port)] * 4
    finally:
        await mosaic.stop()


async def test_no_healthy_replica_falls_back_to_the_primary(
    cluster: Cluster, mosaic_backend: str, refused_port: Callable[[], int]
) -> None:
    mosaic = await host(cluster.primary_url, [dead_url(refused_port()), dead_url(refused_port())])
    try:

        async def read() -> tuple[bool, int]:
            async with mosaic.unit_of_work(read_only=True) as uow:
                return await where(uow.session)

        assert await in_fresh_context(read) == (False, cluster.primary.port)
        assert await in_fresh_context(read) == (False, cluster.primary.port)
    finally:
        await mosaic.stop()


async def test_replica_dying_mid_unit(cluster: Cluster, mosaic_backend: str) -> None:
    """Inside ``transaction(read_only=True)``: DatabaseUnavailableError (the block cannot be
    replayed), and the replica leaves the rotation. ``run(..., read_only=True)``: the unit runs
    again on the primary, the caller sees no error."""
    replica = cluster.replicas[1]
    mosaic = await host(cluster.primary_url, [replica.url("app")])
    try:

        async def block_dies() -> None:
            async with mosaic.transaction(read_only=True) as session:
                assert (await where(session))[0]
                await asyncio.to_thread(replica.stop)
                await where(session)

        with pytest.raises(DatabaseUnavailableError):
            await in_fresh_context(block_dies)

        async def read() -> tuple[bool, int]:
            async with mosaic.unit_of_work(read_only=True) as uow:
                return await where(uow.session)

        assert await in_fresh_context(read) == (False, cluster.primary.port)
        await asyncio.to_thread(replica.start)
    finally:
        await mosaic.stop()

    mosaic = await host(cluster.primary_url, [replica.url("app")])
    try:
        attempts: list[tuple[bool, int]] = []

        async def body(uow: UnitOfWork) -> int:
            attempts.append(await where(uow.session))
            if len(attempts) == 1:
                await asyncio.to_thread(replica.stop)
            return await uow.repository(UserRepository).count()

        count = await in_fresh_context(lambda: mosaic.run(body, read_only=True))
        assert isinstance(count, int)
        assert [on_replica for on_replica, _ in attempts] == [True, False]
    finally:
        await mosaic.stop()
        await asyncio.to_thread(replica.start)
