"""Running the migrations: up/down/up with data, atomic failures, timeouts, async use.

Every test marked with ``db_url`` runs on a SQLite file and on a PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from sqlmosaic import MigrationError, MosaicSettings, create_engine
from sqlmosaic.migrations import (
    AppliedRevision,
    check,
    current,
    diffs,
    downgrade,
    heads,
    upgrade,
)
from sqlmosaic.testing._pgserver import PostgresServer

from .helpers import (
    DANGLING,
    FAILING,
    HEAD,
    LOCKING,
    NICKNAME,
    SHIPPED,
    SLEEPING,
    add_revision,
    column_names,
    counts,
    make_config,
    seed,
    table_names,
)

SEEDED = {"user": 1, "team": 1, "membership": 1, "project": 1, "task": 1, "assignee": 1}


def test_repository_history_has_one_head_and_the_first_revision() -> None:
    cfg = make_config("sqlite+aiosqlite:///unused.db")
    assert heads(cfg) == (HEAD,)
    versions = sorted(
        p.name
        for p in (Path(cfg.get_main_option("script_location") or "") / "versions").glob("*.py")
    )
    assert versions[0] == "2026_11_26_0350-eab1d300f7dd_create_accounts_and_tasks_tables.py"
    assert len(versions) == len(SHIPPED)


async def test_upgrade_creates_the_schema_and_check_finds_nothing(db_url: str) -> None:
    cfg = make_config(db_url)
    applied = await upgrade(cfg)
    assert [a.revision for a in applied] == list(SHIPPED)
    assert applied[0].is_upgrade
    assert applied[0].message == "create accounts and tasks tables"
    assert await current(cfg) == (HEAD,)
    assert {
        "user",
        "team",
        "membership",
        "project",
        "task",
        "alembic_version",
    } <= await table_names(db_url)
    assert await check(cfg) == []
    assert await upgrade(cfg) == []  # idempotent


async def test_up_down_up_keeps_rows_the_revision_does_not_touch(
    db_url: str, scripts: Path
) -> None:
    add_revision(scripts, "r2_nickname", NICKNAME)
    cfg = make_config(db_url, scripts)
    await upgrade(cfg, HEAD)
    await seed(db_url)
    applied = await upgrade(cfg)
    assert [a.revision for a in applied] == ["r2nickname"]
    assert "nickname" in await column_names(db_url, "user")
    assert await counts(db_url) == SEEDED

    # On SQLite, drop_column rebuilds "user" (batch: DROP TABLE + rename). With foreign keys
    # enforced, that DROP would delete the membership (ON DELETE CASCADE) and null
    # task.assignee_id; the runtime switches enforcement off for the run and checks after.
    undone = await downgrade(cfg, "-1")
    assert [(a.revision, a.is_upgrade) for a in undone] == [("r2nickname", False)]
    assert await current(cfg) == (HEAD,)
    assert "nickname" not in await column_names(db_url, "user")
    assert await counts(db_url) == SEEDED

    assert [a.revision for a in await upgrade(cfg, "head")] == ["r2nickname"]
    assert await counts(db_url) == SEEDED
    assert await check(cfg) != []  # r2 adds a column the installed models do not have

    await downgrade(cfg, "base")
    assert await current(cfg) == ()
    assert await table_names(db_url) == {"alembic_version"}
    await upgrade(cfg, HEAD)
    assert await diffs(cfg) == []  # at HEAD the schema is exactly the installed models


async def test_on_apply_reports_each_revision_with_its_duration(db_url: str, scripts: Path) -> None:
    add_revision(scripts, "r2_nickname", NICKNAME)
    cfg = make_config(db_url, scripts)
    seen: list[AppliedRevision] = []
    cfg.attributes["mosaic_on_apply"] = seen.append
    await upgrade(cfg)
    assert [s.revision for s in seen] == [*SHIPPED, "r2nickname"]
    assert all(0 <= s.seconds < 30 for s in seen)


async def test_failing_revision_rolls_back_the_whole_run(db_url: str, scripts: Path) -> None:
    """PostgreSQL, and SQLite through sqlmosaic's engine (explicit BEGIN): fully atomic."""
    add_revision(scripts, "r2_nickname", NICKNAME)
    add_revision(scripts, "r3_failing", FAILING)
    cfg = make_config(db_url, scripts)
    await upgrade(cfg, HEAD)
    await seed(db_url)
    with pytest.raises(MigrationError) as caught:
        await upgrade(cfg)  # r2 succeeds, r3 fails: both are undone
    err = caught.value
    assert err.revision == "r3failing"
    assert "upgrade of revision r3failing ('add note table then fail') failed" in str(err)
    assert "no_such_table" in str(err)
    assert f"the whole run was rolled back; the database is still at {HEAD}" in str(err)
    assert await current(cfg) == (HEAD,)
    assert "note" not in await table_names(db_url)
    assert {"nickname", "karma"}.isdisjoint(await column_names(db_url, "user"))
    assert await counts(db_url) == SEEDED


async def test_a_revision_leaving_dangling_foreign_keys_is_rolled_back(
    db_url: str, scripts: Path
) -> None:
    """SQLite runs with enforcement off (see above), so PRAGMA foreign_key_check runs before
    the commit; PostgreSQL rejects the row at once. Either way nothing is committed."""
    add_revision(scripts, "r2_nickname", NICKNAME)
    add_revision(scripts, "r3_dangling", DANGLING)
    cfg = make_config(db_url, scripts)
    await upgrade(cfg, HEAD)
    await seed(db_url)
    with pytest.raises(MigrationError) as caught:
        await upgrade(cfg)
    assert caught.value.revision == "r3dangling"
    if "sqlite" in db_url:
        assert (
            "revision(s) r2nickname, r3dangling leave 1 row(s) violating foreign keys "
            "(task row 2 -> user); the whole run was rolled back" in str(caught.value)
        )
    else:
        assert "fk_task_assignee_id_user" in str(caught.value)
    assert await current(cfg) == (HEAD,)
    assert await counts(db_url) == SEEDED


async def test_sqlite_without_sqlmosaic_engine_names_the_partial_state(
    sqlite_url: str, scripts: Path
) -> None:
    """A plain aiosqlite engine (pysqlite's implicit transactions): DDL is NOT transactional."""
    add_revision(scripts, "r2_nickname", NICKNAME)
    add_revision(scripts, "r3_failing", FAILING)
    cfg = make_config(sqlite_url, scripts)
    plain = create_async_engine(sqlite_url, poolclass=NullPool)
    cfg.attributes["connection"] = plain
    try:
        with pytest.raises(MigrationError) as caught:
            await upgrade(cfg)
    finally:
        await plain.dispose()
    message = str(caught.value)
    assert caught.value.revision == "r3failing"
    assert "DDL is not transactional here: alembic_version says r2nickname" in message
    assert "the schema may be partially changed by revision r3failing" in message
    del cfg.attributes["connection"]
    assert await current(cfg) == ("r2nickname",)
    assert "note" in await table_names(sqlite_url)  # the half-applied part the message warns of


@pytest.mark.postgres
async def test_lock_timeout_fails_fast_while_another_session_holds_the_table(
    pg_server: PostgresServer, pg_database: str, scripts: Path
) -> None:
    add_revision(scripts, "r2_nickname", NICKNAME)
    add_revision(scripts, "r3_locking", LOCKING)
    url = pg_server.url(pg_database)
    # The statement timeout only bounds the test if the lock timeout were not applied.
    settings = MosaicSettings(
        database_url=url, migration_lock_timeout=0.5, migration_statement_timeout=10
    )
    cfg = make_config(url, scripts, settings=settings)
    await upgrade(cfg, "r2nickname")
    with psycopg.connect(pg_server.url(pg_database, driver="")) as blocker:
        blocker.execute("LOCK TABLE team IN ACCESS EXCLUSIVE MODE")  # transaction stays open
        with pytest.raises(MigrationError) as caught:  # lock_timeout, not the 10 s statement one
            await upgrade(cfg)
        blocker.rollback()
    message = str(caught.value)
    assert caught.value.revision == "r3locking"
    assert "lock_timeout (0.5s, MOSAIC_MIGRATION_LOCK_TIMEOUT) expired" in message
    assert "another session holds a conflicting lock" in message
    assert await current(cfg) == ("r2nickname",)
    assert [a.revision for a in await upgrade(cfg)] == ["r3locking"]  # lock gone: it applies


@pytest.mark.postgres
async def test_statement_timeout_stops_a_long_migration(pg_url: str, scripts: Path) -> None:
    add_revision(scripts, "r2_nickname", NICKNAME)
    add_revision(scripts, "r3_sleeping", SLEEPING)
    settings = MosaicSettings(database_url=pg_url, migration_statement_timeout=0.3)
    cfg = make_config(pg_url, scripts, settings=settings)
    with pytest.raises(MigrationError) as caught:
        await upgrade(cfg)
    assert caught.value.revision == "r3sleeping"
    assert "statement_timeout (0.3s, MOSAIC_MIGRATION_STATEMENT_TIMEOUT) expired" in str(
        caught.value
    )
    assert await current(cfg) == ()  # r1 and r2 rolled back with it: one transaction


@pytest.mark.postgres
def test_offline_sql_sets_the_timeouts_inside_one_transaction(pg_url: str) -> None:
    sql = make_config(pg_url)
    sql.output_buffer = io.StringIO()
    command.upgrade(sql, "heads", sql=True)  # offline: no connection, no event loop needed
    text = sql.output_buffer.getvalue()
    assert text.index("BEGIN;") < text.index("SET LOCAL lock_timeout = '5000ms';")
    assert "SET LOCAL statement_timeout = '600000ms';" in text
    assert text.count("COMMIT;") == 1  # one transaction for the whole run


async def test_sync_command_inside_a_running_loop_is_refused_clearly(db_url: str) -> None:
    cfg = make_config(db_url)
    with pytest.raises(MigrationError, match="running event loop"):
        command.upgrade(cfg, "heads")
    assert await current(cfg) == ()


async def test_async_api_runs_inside_the_callers_transaction(db_url: str) -> None:
    """Hand in an AsyncConnection: the migration joins its transaction; the caller decides."""
    cfg = make_config(db_url)
    engine = create_engine(MosaicSettings(database_url=db_url))
    try:
        async with engine.connect() as conn:
            await conn.begin()
            cfg.attributes["connection"] = conn
            assert [a.revision for a in await upgrade(cfg)] == list(SHIPPED)
            assert await current(cfg) == (HEAD,)  # visible inside the transaction
            await conn.rollback()
        del cfg.attributes["connection"]
        assert await current(cfg) == ()
        assert await table_names(db_url) <= {"alembic_version"}

        async with engine.connect() as conn:
            await conn.begin()
            cfg.attributes["connection"] = conn
            await upgrade(cfg)
            await conn.commit()
        del cfg.attributes["connection"]
        assert await current(cfg) == (HEAD,)
    finally:
        await engine.dispose()


async def test_async_engine_in_attributes_is_used_and_not_disposed(db_url: str) -> None:
    cfg = make_config(db_url)
    engine = create_engine(MosaicSettings(database_url=db_url))
    cfg.attributes["connection"] = engine
    try:
        await upgrade(cfg)
        assert await current(cfg) == (HEAD,)
        async with engine.connect():  # still usable
            pass
    finally:
        await engine.dispose()


async def test_unreachable_database_is_a_migration_error_with_masked_password() -> None:
    cfg = make_config("postgresql+asyncpg://owner:hunter%402@127.0.0.1:1/nowhere")
    with pytest.raises(MigrationError) as caught:
        await upgrade(cfg)
    message = str(caught.value)
    assert message.startswith("cannot connect to postgresql+asyncpg://owner:***@127.0.0.1:1/")
    assert "hunter" not in message


async def test_concurrent_upgrades_in_one_process_take_turns(db_url: str) -> None:
    """Alembic's context is process-global: interleaved commands would corrupt each other."""
    configs = [make_config(db_url) for _ in range(4)]
    results = await asyncio.gather(*(upgrade(cfg) for cfg in configs))
    assert sorted(len(applied) for applied in results) == [0, 0, 0, len(SHIPPED)]
    assert await current(configs[0]) == (HEAD,)


def test_concurrent_upgrades_in_separate_processes_apply_once(db_url: str) -> None:
    """SQLite: BEGIN IMMEDIATE; PostgreSQL: pg_advisory_xact_lock. Without them the losers
    fail creating alembic_version or the tables."""
    argv = [str(Path(sys.executable).parent / "mosaic"), "db", "upgrade", "--database-url", db_url]
    env = {**os.environ, "COLUMNS": "200"}
    procs = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
    done = [out for out, _ in outputs if f"Done: {len(SHIPPED)} revision(s) applied" in out]
    idle = [out for out, _ in outputs if f"Nothing to do: the database is at {HEAD}." in out]
    assert (len(done), len(idle)) == (1, 2), outputs
