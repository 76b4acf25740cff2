"""Fault injection on real PostgreSQL: backend kills mid-workload, pool exhaustion, cancellation
storms. Each test is bounded (a few hundred units of work at most) and event-driven: faults are
injected on the workload's progress, never on a timer, and nothing is asserted on a stopwatch.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel.ext.asyncio.session import AsyncSession

from sqlmosaic import (
    CommitOutcomeUnknownError,
    Database,
    DatabaseUnavailableError,
    MosaicSettings,
    Retry,
)

pytestmark = pytest.mark.mosaic_backends("postgresql")

ACCOUNTS = 8
START_BALANCE = 1_000
TRANSFERS = 160
WORKERS = 4
KILL_EVERY = 8  # completed transfers between two kills of every backend of the workload


@pytest.fixture
def app_name() -> str:
    """This test's ``application_name``: how the admin connection finds its backends."""
    return f"mosaic-fault-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def admin(mosaic_fresh_url: str) -> AsyncIterator[AsyncConnection]:
    """An autocommit connection of its own (another application_name), never killed."""
    engine = create_async_engine(mosaic_fresh_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            yield await connection.execution_options(isolation_level="AUTOCOMMIT")
    finally:
        await engine.dispose()


async def _backends(admin: AsyncConnection, app_name: str, state: str | None = None) -> int:
    sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app"
    if state is not None:
        sql += " AND state = :state"
    result = await admin.execute(text(sql), {"app": app_name, "state": state})
    return int(result.scalar_one())


async def _poll(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait until ``check()`` holds; the bound (~30 s) is a hang guard, not a measurement."""
    for _ in range(1500):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


# --------------------------------------------------------------------------- backend kills


async def _create_bank(admin: AsyncConnection) -> None:
    await admin.execute(
        text("CREATE TABLE bank_account (id int PRIMARY KEY, balance bigint NOT NULL)")
    )
    await admin.execute(
        text(
            "CREATE TABLE bank_transfer (id serial PRIMARY KEY, key text UNIQUE NOT NULL, "
            "src int NOT NULL, dst int NOT NULL, amount bigint NOT NULL)"
        )
    )
    await admin.execute(
        text("INSERT INTO bank_account SELECT g, :start FROM generate_series(1, :n) g"),
        {"start": START_BALANCE, "n": ACCOUNTS},
    )


def _transfer(key: str, src: int, dst: int, amount: int):  # type: ignore[no-untyped-def]
    async def unit(session: AsyncSession) -> None:
        # the idempotency key first: a retry of an applied transfer changes nothing
        inserted = await session.scalar(
            text(
                "INSERT INTO bank_transfer (key, src, dst, amount) VALUES (:k, :s, :d, :a) "
                "ON CONFLICT (key) DO NOTHING RETURNING id"
            ),
            {"k": key, "s": src, "d": dst, "a": amount},
        )
        if inserted is None:
            return
        for account, delta in sorted(((src, -amount), (dst, amount))):  # one lock order
            await session.exec(  # type: ignore[call-overload]
                text("UPDATE bank_account SET balance = balance + :d WHERE id = :id"),
                params={"d": delta, "id": account},
            )

    return unit


async def test_backend_kills_during_transfers_lose_and_duplicate_nothing(
    mosaic_fresh_url: str, admin: AsyncConnection, app_name: str
) -> None:
    await _create_bank(admin)
    settings = MosaicSettings.load(
        database_url=mosaic_fresh_url,
        application_name=app_name,
        pool_size=WORKERS,
        max_overflow=0,
    )
    plan = [
        (f"t{n}", 1 + n % ACCOUNTS, 1 + (n * 3 + 1) % ACCOUNTS, 1 + n % 7) for n in range(TRANSFERS)
    ]
    plan = [(k, s, d if d != s else 1 + d % ACCOUNTS, a) for k, s, d, a in plan]
    queue: asyncio.Queue[tuple[str, int, int, int]] = asyncio.Queue()
    for item in plan:
        queue.put_nowait(item)
    done = 0
    client_retries = {"unavailable": 0, "outcome_unknown": 0}
    progress = asyncio.Condition()
    kills = 0

    async def worker(db: Database) -> None:
        nonlocal done
        while not queue.empty():
            key, src, dst, amount = queue.get_nowait()
            while True:  # what a client does: retry with the same idempotency key
                try:
                    await db.run(_transfer(key, src, dst, amount), retry=Retry(attempts=5))
                    break
                except CommitOutcomeUnknownError:
                    client_retries["outcome_unknown"] += 1
                except DatabaseUnavailableError:
                    client_retries["unavailable"] += 1
            async with progress:
                done += 1
                progress.notify_all()

    async def killer() -> None:
        nonlocal kills
        for target in range(KILL_EVERY, TRANSFERS, KILL_EVERY):
            async with progress:
                await progress.wait_for(lambda target=target: done >= target)
            result = await admin.execute(
                text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                    "FROM pg_stat_activity WHERE application_name = :app"
                ),
                {"app": app_name},
            )
            kills += int(result.scalar_one())

    async with Database(settings) as db:
        # a failing worker cancels the others and the killer (which waits on progress)
        async with asyncio.timeout(120), asyncio.TaskGroup() as group:  # hang guard only
            group.create_task(killer())
            for _ in range(WORKERS):
                group.create_task(worker(db))
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]

    assert kills >= TRANSFERS // KILL_EVERY - 1  # backends really died, mid-workload
    rows = (await admin.execute(text("SELECT key, src, dst, amount FROM bank_transfer"))).all()
    assert sorted(tuple(r) for r in rows) == sorted(plan)  # 0 lost, 0 duplicated
    balances = dict((await admin.execute(text("SELECT id, balance FROM bank_account"))).all())
    assert sum(balances.values()) == ACCOUNTS * START_BALANCE
    expected = dict.fromkeys(range(1, ACCOUNTS + 1), START_BALANCE)
    for _key, src, dst, amount in plan:
        expected[src] -= amount
        expected[dst] += amount
    assert balances == expected  # every applied transfer moved its money exactly once
    print(f"transfers={TRANSFERS} kills={kills} client retries={client_retries}")


# --------------------------------------------------------------------------- pool exhaustion


@pytest.mark.mosaic_backends("postgresql", "sqlite")
async def test_pool_exhaustion_is_a_typed_error_and_leaks_nothing(mosaic_fresh_url: str) -> None:
    settings = MosaicSettings.load(
        database_url=mosaic_fresh_url, pool_size=2, max_overflow=0, pool_timeout=0.2
    )
    release = asyncio.Event()
    holding = asyncio.Barrier(3)

    async def hold(session: AsyncSession) -> None:
        await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        await holding.wait()  # both pooled connections are checked out now
        await release.wait()

    async def select_one(session: AsyncSession) -> int:
        return int(await session.scalar(text("SELECT 1")) or 0)

    async with Database(settings) as db:
        holders = [asyncio.create_task(db.run(hold, read_only=True)) for _ in range(2)]
        await holding.wait()
        assert db.engine.pool.checkedout() == 2  # type: ignore[attr-defined]
        with pytest.raises(DatabaseUnavailableError, match="pooled connection"):
            await db.run(select_one, read_only=True)
        release.set()
        await asyncio.gather(*holders)
        pool = db.engine.pool
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        assert pool.checkedin() <= 2  # type: ignore[attr-defined]
        assert await db.run(select_one, read_only=True) == 1  # the pool serves again


# --------------------------------------------------------------------------- cancellation


async def test_a_cancellation_storm_leaks_no_connection(
    mosaic_fresh_url: str, admin: AsyncConnection, app_name: str
) -> None:
    """40 units of work, 8 of them mid-``pg_sleep`` on the server and the rest waiting for a
    pooled connection, all cancelled at once: nothing checked out, no statement left running,
    and after ``dispose`` no backend of this test's application_name at all."""
    pool_size, overflow, tasks_n = 4, 4, 40
    settings = MosaicSettings.load(
        database_url=mosaic_fresh_url,
        application_name=app_name,
        pool_size=pool_size,
        max_overflow=overflow,
        pool_timeout=60,
    )

    async def sleeper(session: AsyncSession) -> None:
        await session.exec(text("SELECT pg_sleep(60)"))  # type: ignore[call-overload]

    async with Database(settings) as db:
        tasks = [asyncio.create_task(db.run(sleeper)) for _ in range(tasks_n)]

        async def all_sleeping() -> bool:
            return await _backends(admin, app_name, "active") == pool_size + overflow

        await _poll(all_sleeping, "every connection runs pg_sleep")
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results), results
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]

        async def none_active() -> bool:
            return await _backends(admin, app_name, "active") == 0

        await _poll(none_active, "the cancel requests stopped every statement")

    async def none_left() -> bool:
        return await _backends(admin, app_name) == 0

    await _poll(none_left, "no backend of the disposed engine is left")
