"""Per-plugin binds (``MOSAIC_BINDS``) on real databases, PostgreSQL and SQLite.

The test plugin ``memos`` (one table, no foreign keys, its own branch) lives in a SECOND database
created by the test (a second PostgreSQL database on the test server; a second SQLite file); the
host's plugins stay on the primary (a fresh clone of the migrated template).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from mosaic_accounts import User, UserRepository
from sqlmosaic import (
    ConfigurationError,
    CrossBindForeignKeyError,
    CrossBindWriteError,
    Database,
    Mosaic,
    MosaicSettings,
    RepositoryError,
    UnitOfWork,
    create_engine,
    create_session_factory,
    transaction,
)
from sqlmosaic.migrations import alembic_config, check, current, downgrade, upgrade
from sqlmosaic.migrations._binds import bind_configs

from . import memos
from .memos import Memo, MemoRepository

REPO = Path(__file__).resolve().parents[2]
MEMOS_HEAD = "5a1d0c3e9b7f"


@pytest.fixture
def second_url(mosaic_empty_url: str) -> str:
    """The bind's database: a second, EMPTY one (the shipped fixture: on the test server, or a
    second file), beside the migrated ``mosaic_fresh_url`` primary."""
    return mosaic_empty_url


def bound_settings(primary: str, second: str) -> MosaicSettings:
    return MosaicSettings.load(
        database_url=primary,
        binds={"memos": second},
        plugins=["accounts", "tasks", "comments"],
    )


def new_host(primary: str, second: str) -> Mosaic:
    return Mosaic(bound_settings(primary, second), plugins={"memos": memos})


async def migrate_binds(primary: str, second: str) -> list[Any]:
    """``bind_configs`` + ``upgrade`` on each: what ``mosaic db upgrade`` does."""

    def configs() -> list[Any]:  # loads plugins, reads scripts: off the event loop
        settings = bound_settings(primary, second)
        plugins = Mosaic(settings, plugins={"memos": memos}).load()
        return bind_configs(
            alembic_config(REPO / "alembic.ini", settings=settings, plugins=plugins)
        )

    binds = await asyncio.to_thread(configs)
    for bind in binds:
        await upgrade(bind.config)
    return binds


@pytest.fixture
async def host(mosaic_fresh_url: str, second_url: str) -> AsyncIterator[Mosaic]:
    await migrate_binds(mosaic_fresh_url, second_url)
    started = await new_host(mosaic_fresh_url, second_url).start()
    try:
        yield started
    finally:
        await started.stop()


async def count(url: str, table: str) -> int | None:
    """Rows in ``table`` of the database at ``url`` (None: no such table), on an engine of its
    own: what is really there, not what a session routed."""
    engine = create_engine(MosaicSettings.load(database_url=url))
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
            if table not in names:
                return None
            return int((await conn.execute(text(f'SELECT count(*) FROM "{table}"'))).scalar_one())
    finally:
        await engine.dispose()


def user(n: int) -> User:
    return User(email=f"u{n}@example.com", name=f"U{n}")


async def write_user_and_memo(uow: UnitOfWork) -> None:
    await uow.repository(UserRepository).add(user(21))
    await uow.repository(MemoRepository).add(Memo(author_email="u21@example.com", body="no"))


# --------------------------------------------------------------------------- routing


async def test_memos_rows_land_in_their_own_database(
    host: Mosaic, mosaic_fresh_url: str, second_url: str
) -> None:
    async with host.unit_of_work() as uow:
        await uow.repository(MemoRepository).add(Memo(author_email="a@example.com", body="one"))
        # the direct INSERT path (no ORM flush) and COPY on asyncpg route the same way
        await uow.repository(MemoRepository).add_many(
            [Memo(author_email="a@example.com", body=f"many {i}") for i in range(3)]
        )
        await uow.repository(MemoRepository).copy_many(
            [{"author_email": "b@example.com", "body": f"copied {i}"} for i in range(2)]
        )
    async with host.unit_of_work() as uow:
        await uow.repository(UserRepository).add(user(1))

    assert await count(second_url, "memo") == 6
    assert await count(mosaic_fresh_url, "memo") is None  # no such table on the primary
    assert await count(mosaic_fresh_url, "user") == 1
    assert await count(second_url, "user") is None

    async with host.unit_of_work(read_only=True) as uow:
        assert await uow.repository(MemoRepository).count() == 6
        page = await uow.repository(MemoRepository).list(order_by=["id"], limit=10)
        assert [m.body for m in page.items][:2] == ["one", "many 0"]


async def test_a_unit_may_read_from_both_binds_and_write_to_one(
    host: Mosaic, mosaic_fresh_url: str, second_url: str
) -> None:
    async with host.unit_of_work() as uow:
        await uow.repository(UserRepository).add(user(2))
    async with host.unit_of_work() as uow:
        # reads on the primary, one write on the memos database: allowed
        users = await uow.repository(UserRepository).count()
        await uow.repository(MemoRepository).add(
            Memo(author_email="u2@example.com", body=f"{users} user(s)")
        )
    assert await count(second_url, "memo") == 1
    async with host.unit_of_work() as uow:
        # and the other way round: read memos, write a user
        memos_seen = await uow.repository(MemoRepository).count()
        await uow.repository(UserRepository).add(user(3 + memos_seen))
    assert await count(mosaic_fresh_url, "user") == 2


@pytest.mark.parametrize(
    "how", ["flush", "add_many", "copy_many", "update_by_key", "upsert", "statement", "pending"]
)
async def test_a_unit_that_wrote_to_two_binds_is_refused_and_commits_nothing(
    host: Mosaic, mosaic_fresh_url: str, second_url: str, how: str
) -> None:
    async with host.unit_of_work() as uow:
        kept = await uow.repository(MemoRepository).add(
            Memo(author_email="x@example.com", body="kept")
        )

    async def write_both() -> None:
        async with host.unit_of_work() as uow:
            await uow.repository(UserRepository).add(user(9))
            memos_repo = uow.repository(MemoRepository)
            if how == "flush":
                await memos_repo.add(Memo(author_email="x@example.com", body="lost"))
            elif how == "add_many":
                await memos_repo.add_many([Memo(author_email="x@example.com", body="lost")])
            elif how == "copy_many":
                await memos_repo.copy_many([{"author_email": "x@example.com", "body": "lost"}])
            elif how == "update_by_key":
                await memos_repo.update(kept.id, {"body": "changed"})
            elif how == "upsert":
                await memos_repo.upsert({"id": kept.id, "author_email": "x@", "body": "changed"})
            elif how == "statement":
                await uow.session.exec(update(Memo).values(body="changed"))
            else:  # pending, flushed by the commit itself
                uow.session.add(Memo(author_email="x@example.com", body="lost"))

    with pytest.raises(CrossBindWriteError) as info:
        await write_both()
    error = info.value
    assert len(error.binds) == 2
    assert any("(primary)" in bind for bind in error.binds)
    assert any("(plugin memos)" in bind for bind in error.binds)
    assert "nothing was committed" in str(error)
    # neither database committed any of it
    assert await count(mosaic_fresh_url, "user") == 0
    assert await count(second_url, "memo") == 1
    async with host.unit_of_work(read_only=True) as uow:
        memo = (await uow.repository(MemoRepository).list(limit=5)).items
        assert [m.body for m in memo] == ["kept"]
    # the session of the refused unit was rolled back: the host goes on working
    async with host.unit_of_work() as uow:
        await uow.repository(UserRepository).add(user(10))
    assert await count(mosaic_fresh_url, "user") == 1


async def test_the_same_refusal_on_a_session_committed_by_hand(host: Mosaic) -> None:
    async with host.session_factory() as session:
        session.add(user(11))
        session.add(Memo(author_email="y@example.com", body="b"))
        with pytest.raises(CrossBindWriteError):
            await session.commit()
        await session.rollback()
        session.add(Memo(author_email="y@example.com", body="c"))
        await session.commit()  # one bind: fine


async def test_run_retries_nothing_and_raises_the_refusal(host: Mosaic) -> None:
    calls = 0

    async def both(uow: UnitOfWork) -> None:
        nonlocal calls
        calls += 1
        await write_user_and_memo(uow)

    with pytest.raises(CrossBindWriteError):
        await host.run(both)
    assert calls == 1


def test_urls_are_masked_where_binds_are_shown() -> None:
    settings = MosaicSettings.load(
        database_url="sqlite+aiosqlite:///./main.db",
        binds="memos=postgresql://app:s3cret-pw@db2.internal/memos",
    )
    assert settings.masked_binds == {"memos": "postgresql+asyncpg://app:***@db2.internal/memos"}
    assert "s3cret" not in repr(settings)
    host = Mosaic(settings, plugins={"memos": memos}, discover=True)
    host.load()
    described = host.database.describe()
    assert described["binds"] == {"memos": "postgresql+asyncpg://app:***@db2.internal/memos"}
    assert "s3cret" not in str(described)
    with pytest.raises(ConfigurationError) as info:
        MosaicSettings.load(binds="memos")
    assert info.value.setting == "MOSAIC_BINDS"
    with pytest.raises(ConfigurationError) as info:
        MosaicSettings.load(binds="memos=mysql://app:s3cret-pw@db/x")
    assert "s3cret" not in str(info.value)


# --------------------------------------------------------------------------- refused at load


def test_a_foreign_key_across_binds_is_refused_at_load_naming_both_plugins() -> None:
    """``comments`` has foreign keys into ``tasks`` (task) and ``accounts`` (user): bound to
    another database, the first of them is refused, naming both plugins and both tables."""
    settings = MosaicSettings.load(
        database_url="sqlite+aiosqlite:///./main.db",
        binds="comments=postgresql://app:s3cret-pw@db2.internal/comments",
        plugins=["accounts", "tasks", "comments"],
    )
    with pytest.raises(CrossBindForeignKeyError) as info:
        Mosaic(settings).load()
    error = info.value
    assert error.plugins == ("comments", "tasks")
    assert error.tables == ("comment", "task")
    message = str(error)
    assert "'comments'" in message
    assert "'tasks'" in message
    assert "comment.task_id" in message
    assert "'task.id'" in message
    assert "s3cret" not in message


def test_binding_a_plugin_that_is_off_or_has_no_branch_is_refused() -> None:
    off = MosaicSettings.load(
        database_url="sqlite+aiosqlite:///./main.db",
        binds="nosuch=sqlite:///./other.db",
        plugins=["accounts"],
    )
    with pytest.raises(ConfigurationError) as info:
        Mosaic(off).load()
    assert "'nosuch'" in str(info.value)
    assert info.value.setting == "MOSAIC_BINDS"
    no_branch = MosaicSettings.load(
        database_url="sqlite+aiosqlite:///./main.db",
        binds="accounts=sqlite:///./other.db",
        plugins=["accounts"],
    )
    with pytest.raises(ConfigurationError) as info:
        Mosaic(no_branch).load()
    assert "owns no migration branch" in str(info.value)


async def test_a_database_without_the_host_refuses_binds() -> None:
    database = Database(
        MosaicSettings.load(
            database_url="sqlite+aiosqlite:///:memory:", binds="memos=sqlite:///./other.db"
        )
    )
    with pytest.raises(ConfigurationError) as info:
        await database.connect()
    assert info.value.setting == "MOSAIC_BINDS"


# --------------------------------------------------------------------------- migrations


async def test_migrations_run_per_bind_up_and_down(mosaic_fresh_url: str, second_url: str) -> None:
    primary_before = await count(mosaic_fresh_url, "alembic_version")
    binds = await migrate_binds(mosaic_fresh_url, second_url)
    assert [b.name for b in binds] == ["primary", "plugin memos"]
    primary, bound = binds[0].config, binds[1].config
    assert await current(bound) == (MEMOS_HEAD,)
    assert MEMOS_HEAD not in await current(primary)
    assert await count(mosaic_fresh_url, "alembic_version") == primary_before
    assert await count(second_url, "memo") == 0
    assert await count(mosaic_fresh_url, "memo") is None
    # each database matches the models that live there
    assert await check(primary) == []
    assert await check(bound) == []
    # the memos branch goes down on its own database only
    undone = await downgrade(bound, "memos@base")
    assert [step.revision for step in undone] == [MEMOS_HEAD]
    assert await count(second_url, "memo") is None
    assert await current(bound) == ()
    assert await count(mosaic_fresh_url, "user") == 0  # primary untouched
    assert await check(primary) == []
    await upgrade(bound)
    assert await current(bound) == (MEMOS_HEAD,)


# --------------------------------------------------------------------------- test isolation


async def test_per_test_isolation_rolls_back_both_binds(
    mosaic_fresh_url: str, second_url: str
) -> None:
    """The testing pattern for binds: each bind's connection inside an outer transaction, the
    factory joining both with SAVEPOINTs; the app's commits are savepoint releases, and the
    final rollback leaves both databases as they were."""
    await migrate_binds(mosaic_fresh_url, second_url)
    host = new_host(mosaic_fresh_url, second_url)
    plugins = await asyncio.to_thread(host.load)
    engines: list[AsyncEngine] = [
        create_engine(MosaicSettings.load(database_url=url))
        for url in (mosaic_fresh_url, second_url)
    ]
    try:
        async with engines[0].connect() as primary, engines[1].connect() as other:
            outer = [await primary.begin(), await other.begin()]
            factory = create_session_factory(
                primary,
                binds={m.__table__: other for m in plugins.get("memos").models},
                join_transaction_mode="create_savepoint",
            )
            isolated = Mosaic(host.settings, plugins={"memos": memos}, session_factory=factory)
            await isolated.start()
            try:
                async with isolated.unit_of_work() as uow:
                    await uow.repository(UserRepository).add(user(20))
                async with isolated.unit_of_work() as uow:
                    await uow.repository(MemoRepository).add(
                        Memo(author_email="u20@example.com", body="in a test")
                    )
                async with isolated.unit_of_work(read_only=True) as uow:
                    assert await uow.repository(MemoRepository).count() == 1
                    assert await uow.repository(UserRepository).count() == 1
                with pytest.raises(CrossBindWriteError):  # the same refusal under isolation
                    await isolated.run(write_user_and_memo)
            finally:
                await isolated.stop()
            for transaction_ in outer:
                await transaction_.rollback()
    finally:
        for engine in engines:
            await engine.dispose()
    assert await count(mosaic_fresh_url, "user") == 0
    assert await count(second_url, "memo") == 0


async def test_transaction_helper_on_a_bound_session(host: Mosaic, second_url: str) -> None:
    """``transaction(session)`` (the service layer's form) routes and refuses the same way."""
    async with host.session_factory() as session:
        async with transaction(session):
            await MemoRepository(session).add(Memo(author_email="t@example.com", body="t"))

        async def both() -> None:
            async with transaction(session):
                await MemoRepository(session).add(Memo(author_email="t@example.com", body="u"))
                await UserRepository(session).add(user(30))

        with pytest.raises(CrossBindWriteError):
            await both()
    assert await count(second_url, "memo") == 1


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def memos_installed(mosaic_fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``memos`` discoverable as an installed plugin (a ``.dist-info`` with its entry point on
    ``sys.path``), as the ``mosaic`` command finds plugins. After ``mosaic_fresh_url``: the
    session's template database is migrated without it."""
    site = tmp_path / "site"
    dist = site / "sqlmosaic_test_memos-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sqlmosaic-test-memos\nVersion: 0.1.0\n"
    )
    (dist / "entry_points.txt").write_text(f"[sqlmosaic]\nmemos = {memos.__name__}\n")
    monkeypatch.syspath_prepend(str(site))


def mosaic_db(*args: str, primary: str, binds: str) -> Any:
    from typer.testing import CliRunner

    from sqlmosaic.cli import build_app

    argv = ["db", *args, "--config", str(REPO / "alembic.ini"), "--database-url", primary]
    env = {
        "COLUMNS": "250",
        "MOSAIC_BINDS": binds,
        "MOSAIC_PLUGINS": "accounts,tasks,comments,memos",
    }
    return CliRunner().invoke(build_app(), argv, env=env)


@pytest.mark.usefixtures("memos_installed")
def test_mosaic_db_upgrade_current_check_downgrade_per_bind(
    mosaic_fresh_url: str, second_url: str
) -> None:
    binds = f"memos={second_url}"
    run = mosaic_db("upgrade", primary=mosaic_fresh_url, binds=binds)
    assert run.exit_code == 0, run.output
    assert "(primary) from" in run.output
    assert "(plugin memos) from base to heads" in run.output
    assert f"applied {MEMOS_HEAD}" in run.output
    assert asyncio.run(count(second_url, "memo")) == 0
    assert asyncio.run(count(mosaic_fresh_url, "memo")) is None

    run = mosaic_db("current", primary=mosaic_fresh_url, binds=binds)
    assert run.exit_code == 0, run.output
    primary_part, memos_part = run.output.split("(plugin memos)")
    assert "(primary)" in primary_part
    assert MEMOS_HEAD not in primary_part
    assert f"{MEMOS_HEAD} (memos) (head)" in memos_part

    run = mosaic_db("check", primary=mosaic_fresh_url, binds=binds)
    assert run.exit_code == 0, run.output
    assert run.output.count("OK: the models match the migrations") == 2

    # autogenerate for the bound plugin compares with ITS database (at its head: nothing new)
    run = mosaic_db(
        "revision",
        "--plugin",
        "memos",
        "--autogenerate",
        "-m",
        "nothing new",
        primary=mosaic_fresh_url,
        binds=binds,
    )
    assert run.exit_code == 0, run.output
    assert "nothing written" in run.output

    run = mosaic_db("downgrade", "memos@base", primary=mosaic_fresh_url, binds=binds)
    assert run.exit_code == 0, run.output
    assert "(primary)" not in run.output  # only the database that has the memos branch
    assert f"reverted {MEMOS_HEAD}" in run.output
    assert asyncio.run(count(second_url, "memo")) is None
    assert asyncio.run(count(mosaic_fresh_url, "user")) == 0


@pytest.mark.usefixtures("memos_installed")
def test_mosaic_db_refuses_a_foreign_key_across_binds(
    mosaic_fresh_url: str, second_url: str
) -> None:
    run = mosaic_db("upgrade", primary=mosaic_fresh_url, binds=f"comments={second_url}")
    assert run.exit_code == 1
    assert "plugin 'comments': comment.task_id references 'task.id' of plugin 'tasks'" in (
        run.output
    )


# --------------------------------------------------------------------------- how a bind begins


@pytest.mark.parametrize("how", ["add", "flush"])
async def test_a_read_only_unit_cannot_write_to_a_bind(
    host: Mosaic, second_url: str, how: str
) -> None:
    """``read_only=True`` holds on the bound database too: PostgreSQL refuses the write
    (``SET TRANSACTION READ ONLY`` on the bind's connection), SQLite's bind refuses it before
    it is sent."""

    async def write_in_read_only() -> None:
        async with host.unit_of_work(read_only=True) as uow:
            await uow.repository(MemoRepository).count()  # the bind's transaction begins
            memo = Memo(author_email="r@example.com", body="r")
            if how == "add":
                await uow.repository(MemoRepository).add(memo)
            else:  # pending: flushed at the end of the unit
                uow.session.add(memo)

    with pytest.raises(RepositoryError):
        await write_in_read_only()
    assert await count(second_url, "memo") == 0
    async with host.unit_of_work() as uow:  # the next writing unit on the bind is not affected
        await uow.repository(MemoRepository).add(Memo(author_email="r@example.com", body="w"))
    assert await count(second_url, "memo") == 1


@pytest.mark.parametrize("read_first", ["primary", "bind"])
async def test_a_read_only_unit_opened_after_reads_cannot_write_to_a_bind(
    host: Mosaic, second_url: str, read_first: str
) -> None:
    """The endpoint pattern: the session read before the read-only unit began (its
    connections began then, not as the unit's would); a write to the bind is still refused
    before it is sent, and the next writing unit is not affected."""
    async with host.session_factory() as session:
        if read_first == "primary":
            await UserRepository(session).count()
        else:
            await MemoRepository(session).count()
        with pytest.raises(RepositoryError):
            async with transaction(session, read_only=True):
                await MemoRepository(session).add(Memo(author_email="r@example.com", body="r"))
    assert await count(second_url, "memo") == 0
    async with host.unit_of_work() as uow:
        await uow.repository(MemoRepository).add(Memo(author_email="r@example.com", body="w"))
    assert await count(second_url, "memo") == 1


@pytest.mark.mosaic_backends("sqlite")
async def test_a_writing_unit_takes_the_sqlite_binds_write_lock_at_its_first_statement(
    host: Mosaic, second_url: str
) -> None:
    """As on the primary (``BEGIN IMMEDIATE``): a read-modify-write on the bind cannot
    interleave with another writer, also in a unit opened after the session read the primary
    (the bind joins then). Probed from a plain sqlite3 connection that does not wait."""

    def other_writer_can_begin() -> bool:
        path = second_url.split(":///", 1)[1]
        probe = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            probe.close()

    async with host.unit_of_work() as uow:
        await uow.repository(MemoRepository).count()  # a read: the bind's transaction begins
        assert await asyncio.to_thread(other_writer_can_begin) is False
    async with host.unit_of_work(read_only=True) as uow:
        await uow.repository(MemoRepository).count()  # read-only: BEGIN DEFERRED, no lock
        assert await asyncio.to_thread(other_writer_can_begin) is True
    async with host.session_factory() as session:
        await UserRepository(session).count()  # the dependency's read, on the primary only
        async with transaction(session):  # the bind joins the unit now: as the unit's own
            await MemoRepository(session).count()
            assert await asyncio.to_thread(other_writer_can_begin) is False


@pytest.mark.mosaic_backends("postgresql")
async def test_a_units_isolation_level_applies_to_the_bind(host: Mosaic) -> None:
    async with host.unit_of_work(isolation_level="SERIALIZABLE") as uow:
        await uow.repository(UserRepository).count()
        connection = await uow.session.connection(bind_arguments={"mapper": inspect(Memo)})
        level = await connection.exec_driver_sql("SHOW transaction_isolation")
        assert level.scalar_one() == "serializable"
