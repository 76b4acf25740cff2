"""Models vs database: drift detection, orphan tables, autogenerate (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, String, Table

from sqlmosaic import MigrationError, MosaicSettings, SchemaDriftError
from sqlmosaic.migrations import check, diffs, drift_error, orphans, revision, upgrade

from .helpers import HEAD, TablePlugin, execute, installed_tables, make_config, table_names


async def read_text(path: str | Path) -> str:
    return await asyncio.to_thread(Path(path).read_text)


ADDED_COLUMN = "add_column: column user.nickname VARCHAR(50) (in the models only)"
ADDED_TABLE = "add_table: table 'label' (in the models, missing from the database)"


def changed_plugins(*, drop: tuple[str, ...] = ()) -> dict[str, object]:
    """accounts + tasks, but "user" gains a column and tasks gains a "label" table."""
    tables = installed_tables()
    tables["user"].append_column(Column("nickname", String(50), nullable=True))
    label = Table(
        "label",
        tables["task"].metadata,
        Column("id", Integer, primary_key=True),
        Column("name", String(50), nullable=False),
    )
    accounts = [tables[n] for n in ("user", "team", "membership")]
    tasks = [tables[n] for n in ("project", "task") if n not in drop] + [label]
    return {"accounts": TablePlugin(accounts), "tasks": TablePlugin(tasks, requires=["accounts"])}


async def test_check_catches_an_added_column_and_a_missing_table(db_url: str) -> None:
    await upgrade(make_config(db_url))
    cfg = make_config(db_url, plugins=changed_plugins(), discover=False)
    found = sorted(await check(cfg))
    assert found == [ADDED_COLUMN, ADDED_TABLE]
    err = drift_error(found)
    assert isinstance(err, SchemaDriftError)
    assert err.diffs == (ADDED_COLUMN, ADDED_TABLE)
    assert str(err) == (
        f"models and migrations differ (2 difference(s)):\n  - {ADDED_COLUMN}\n  - {ADDED_TABLE}"
    )


async def test_a_table_dropped_from_the_database_is_drift(db_url: str) -> None:
    cfg = make_config(db_url)
    await upgrade(cfg)
    await execute(db_url, "DROP TABLE task")
    assert await check(cfg) == [
        "add_table: table 'task' (in the models, missing from the database)",
        "add_index: index 'ix_task_assignee_id' on task(assignee_id)",
        "add_index: unique index 'ix_task_idempotency_key' on task(idempotency_key)",
        "add_index: index 'ix_task_project_id' on task(project_id)",
        "add_index: index 'ix_task_status' on task(status)",
    ]


async def test_a_table_removed_from_the_models_is_an_orphan_not_a_drop(db_url: str) -> None:
    """Owned by no enabled plugin: reported by orphans(), never a remove_table difference."""
    await upgrade(make_config(db_url))
    cfg = make_config(db_url, plugins=changed_plugins(drop=("task",)), discover=False)
    assert sorted(await check(cfg)) == [ADDED_COLUMN, ADDED_TABLE]
    assert await orphans(cfg) == ["task"]


async def test_check_refuses_a_database_that_is_not_at_head(db_url: str) -> None:
    with pytest.raises(MigrationError, match=r"the database is at base, not at the heads"):
        await check(make_config(db_url))


async def test_orphan_table_is_reported_and_survives_autogenerate_and_upgrade(
    db_url: str, scripts: Path
) -> None:
    cfg = make_config(db_url, scripts)
    await upgrade(cfg)
    await execute(
        db_url,
        "CREATE TABLE legacy_blog (id INTEGER PRIMARY KEY, title VARCHAR(20))",
        "CREATE INDEX ix_legacy_blog_title ON legacy_blog (title)",
    )
    assert await check(cfg) == []
    assert await orphans(cfg) == ["legacy_blog"]
    written = await revision(cfg, "nothing to do", autogenerate=True)
    source = await read_text(written[0].path)
    assert "legacy_blog" not in source
    assert "drop_table" not in source
    await upgrade(cfg)
    assert "legacy_blog" in await table_names(db_url)


async def test_disabled_plugin_tables_are_orphans(db_url: str) -> None:
    await upgrade(make_config(db_url))
    settings = MosaicSettings(database_url=db_url, plugins=["accounts"])
    cfg = make_config(db_url, settings=settings)
    assert await diffs(cfg) == []
    assert await orphans(cfg) == ["project", "task"]


async def test_autogenerate_writes_the_drift_as_a_batch_friendly_revision(
    db_url: str, scripts: Path
) -> None:
    base = make_config(db_url, scripts)
    await upgrade(base)
    await execute(db_url, "CREATE TABLE legacy_blog (id INTEGER PRIMARY KEY)")
    cfg = make_config(db_url, scripts, plugins=changed_plugins(), discover=False)
    written = await revision(cfg, "add nickname and label", autogenerate=True)
    path = Path(written[0].path)
    assert re.fullmatch(r"\d{4}_\d\d_\d\d_\d{4}-[0-9a-f]{12}_add_nickname_and_label\.py", path.name)
    source = await read_text(path)
    assert "import sqlmodel" in source
    assert 'with op.batch_alter_table("user", schema=None) as batch_op:' in source
    assert 'batch_op.add_column(sa.Column("nickname", sa.String(length=50), nullable=True))' in (
        source
    )
    assert 'op.create_table(\n        "label",' in source
    assert 'sa.PrimaryKeyConstraint("id", name=op.f("pk_label"))' in source
    assert "drop_table" not in source.split("def downgrade")[0]  # no orphan dropped
    assert "legacy_blog" not in source

    applied = await upgrade(cfg)
    assert [a.revision for a in applied] == [written[0].revision]
    assert await check(cfg) == []
    assert "legacy_blog" in await table_names(db_url)
    assert await orphans(cfg) == ["legacy_blog"]


async def test_first_revision_matches_the_installed_models(db_url: str) -> None:
    cfg = make_config(db_url)
    await upgrade(cfg, HEAD)
    assert await check(cfg) == []
    assert await orphans(cfg) == []
