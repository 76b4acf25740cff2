"""``adopt``: a database created outside Alembic (``create_all``), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from sqlmosaic import MigrationError, SchemaDriftError
from sqlmosaic.migrations import adopt, check, current, orphans, upgrade

from .helpers import HEAD, counts, create_all, execute, make_config, seed


async def test_matching_database_is_stamped_at_head_and_keeps_its_rows(db_url: str) -> None:
    await create_all(db_url)
    await seed(db_url)
    await execute(db_url, "CREATE TABLE legacy (id INTEGER PRIMARY KEY)")
    cfg = make_config(db_url)
    assert await current(cfg) == ()

    assert await adopt(cfg) == (HEAD,)
    assert await current(cfg) == (HEAD,)
    assert await check(cfg) == []
    assert await orphans(cfg) == ["legacy"]
    assert (await counts(db_url))["membership"] == 1
    assert await upgrade(cfg) == []  # nothing left to apply


async def test_differing_database_is_refused_with_the_differences(db_url: str) -> None:
    await create_all(db_url)
    await execute(
        db_url,
        'ALTER TABLE "user" ADD COLUMN legacy_flag INTEGER',
        "DROP INDEX ix_task_status",
    )
    cfg = make_config(db_url)
    with pytest.raises(SchemaDriftError) as caught:
        await adopt(cfg)
    assert sorted(caught.value.diffs) == [
        "add_index: index 'ix_task_status' on task(status)",
        "remove_column: column user.legacy_flag INTEGER (in the database only)",
    ]
    assert "refusing to adopt" in str(caught.value)
    assert await current(cfg) == ()  # nothing stamped


async def test_constraint_names_outside_the_naming_convention_are_refused(db_url: str) -> None:
    """``SQLModel.metadata.create_all`` has no naming convention: later migrations could not
    find ``uq_team_name`` and friends, so adoption must not pretend the schemas agree."""
    await create_all(db_url, metadata_of="sqlmodel")
    cfg = make_config(db_url)
    with pytest.raises(SchemaDriftError) as caught:
        await adopt(cfg)
    assert "add_constraint: UniqueConstraint 'uq_team_name' on team(name)" in caught.value.diffs
    assert await current(cfg) == ()


async def test_managed_database_is_not_adopted_again(db_url: str) -> None:
    cfg = make_config(db_url)
    await upgrade(cfg)
    with pytest.raises(MigrationError, match=rf"already under Alembic \(at {HEAD}\)"):
        await adopt(cfg)


async def test_empty_database_has_nothing_to_adopt(db_url: str) -> None:
    cfg = make_config(db_url)
    with pytest.raises(MigrationError, match="none of the models' tables"):
        await adopt(cfg)
    assert await current(cfg) == ()
