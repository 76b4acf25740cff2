"""The merged metadata: exactly the enabled plugins' tables, tagged, with deterministic names.

``notes`` (a test distribution) maps its model on a base with its OWN registry and MetaData,
and declares a string foreign key into accounts' ``user.id``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlmodel import SQLModel

from mosaic_accounts import User
from mosaic_tasks import Task
from sqlmosaic import (
    NAMING_CONVENTION,
    OWNER_KEY,
    Mosaic,
    MosaicSettings,
    load_plugins,
    table_owner,
)

Install = Callable[..., list[Path]]

ACCOUNTS_TABLES = {"user", "team", "membership"}
TASKS_TABLES = {"project", "task"}


def settings(tmp_path: Path, plugins: list[str]) -> MosaicSettings:
    return MosaicSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'm.sqlite'}", plugins=plugins
    )


def owners(metadata: sa.MetaData) -> dict[str, str | None]:
    return {key: table_owner(table) for key, table in metadata.tables.items()}


def test_mosaic_models_tables_are_merged_and_tagged_with_their_owner() -> None:
    only_accounts = load_plugins(allow=["accounts"])
    both = load_plugins(allow=["accounts", "tasks"])

    assert owners(only_accounts.metadata) == dict.fromkeys(ACCOUNTS_TABLES, "accounts")
    assert owners(both.metadata) == {
        **dict.fromkeys(ACCOUNTS_TABLES, "accounts"),
        **dict.fromkeys(TASKS_TABLES, "tasks"),
    }
    assert both.metadata.tables["task"].info[OWNER_KEY] == "tasks"
    assert both.get("tasks").tables == ("project", "task")
    # Copies, not the models' own tables: the merged MetaData is the host's alone.
    assert both.metadata is not SQLModel.metadata
    assert both.metadata.tables["task"] is not Task.__table__
    assert OWNER_KEY not in Task.__table__.info
    assert both.metadata.naming_convention == NAMING_CONVENTION


async def test_a_started_host_never_builds_the_merged_copy(tmp_path: Path) -> None:
    # The copies are most of loading's cost at scale (docs/performance.md) and a running host
    # maps the models' own tables: only migrations, checks and create_all ask for the copy.
    mosaic = Mosaic(settings(tmp_path, ["accounts", "tasks"]))
    await mosaic.start()
    try:
        assert mosaic.plugins.owners == {
            **dict.fromkeys(ACCOUNTS_TABLES, "accounts"),
            **dict.fromkeys(TASKS_TABLES, "tasks"),
        }
        assert "metadata" not in vars(mosaic.plugins)  # the cached property was never computed
        merged = mosaic.metadata
        assert "metadata" in vars(mosaic.plugins)
        assert mosaic.metadata is merged  # built once
        assert owners(merged) == dict(mosaic.plugins.owners)
    finally:
        await mosaic.stop()


def test_two_hosts_with_different_allowlists_get_different_metadata(tmp_path: Path) -> None:
    small = Mosaic(settings(tmp_path, ["accounts"]))
    large = Mosaic(settings(tmp_path, ["accounts", "tasks"]))

    small_tables = set(small.metadata.tables)
    assert set(large.metadata.tables) == ACCOUNTS_TABLES | TASKS_TABLES
    assert set(small.metadata.tables) == small_tables == ACCOUNTS_TABLES  # unchanged by `large`
    assert small.metadata is not large.metadata
    assert small.metadata.tables["user"] is not large.metadata.tables["user"]
    assert set(small.plugins.repositories) == {
        "accounts.users",
        "accounts.teams",
        "accounts.memberships",
    }
    assert "tasks.tasks" in large.plugins.repositories


def test_own_registry_plugin_with_foreign_key_to_accounts(installed: Install) -> None:
    installed("notes")
    from mosaic_test_notes import Note

    plugins = load_plugins(allow=["accounts", "notes"])
    merged = plugins.metadata

    # The plugin's own MetaData holds only its table; the merged one holds everything enabled.
    assert Note.__table__.metadata is not SQLModel.metadata
    assert set(Note.__table__.metadata.tables) == {"note"}
    assert owners(merged) == {**dict.fromkeys(ACCOUNTS_TABLES, "accounts"), "note": "notes"}
    [fk] = merged.tables["note"].foreign_keys
    assert fk.column is merged.tables["user"].c.id
    assert fk.ondelete == "CASCADE"
    # The ORM maps the ORIGINAL table; its string foreign key now resolves to accounts' table
    # (without this, the first flush or join fails with NoReferencedTableError).
    [original_fk] = Note.__table__.foreign_keys
    assert original_fk.column is User.__table__.c.id


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "pg"])
def test_own_registry_plugin_gets_deterministic_constraint_names(
    installed: Install, dialect: sa.Dialect
) -> None:
    installed("notes")
    note = load_plugins(allow=["accounts", "notes"]).metadata.tables["note"]

    ddl = str(CreateTable(note).compile(dialect=dialect))
    [index] = note.indexes
    index_ddl = str(CreateIndex(index).compile(dialect=dialect))

    assert "CONSTRAINT pk_note PRIMARY KEY (id)" in ddl
    assert "CONSTRAINT uq_note_slug UNIQUE (slug)" in ddl
    assert "CONSTRAINT fk_note_author_id_user FOREIGN KEY(author_id) REFERENCES" in ddl
    assert "CONSTRAINT ck_note_priority_range CHECK (priority BETWEEN 0 AND 5)" in ddl
    assert index_ddl.startswith("CREATE INDEX ix_note_author_id ON note (author_id)")


def test_first_party_constraint_names_follow_the_convention() -> None:
    metadata = load_plugins(allow=["accounts", "tasks"]).metadata

    names = {
        key: sorted(str(c.name) for c in table.constraints)
        + sorted(str(i.name) for i in table.indexes)
        for key, table in metadata.tables.items()
    }

    assert names["task"] == [
        "ck_task_status",
        "fk_task_assignee_id_user",
        "fk_task_project_id_project",
        "pk_task",
        "ix_task_assignee_id",
        "ix_task_idempotency_key",
        "ix_task_project_id",
        "ix_task_status",
    ]
    assert names["membership"] == [
        "ck_membership_role",
        "fk_membership_team_id_team",
        "fk_membership_user_id_user",
        "pk_membership",
        "ix_membership_user_id",
    ]


def test_autogenerate_sees_exactly_the_enabled_plugins_tables(installed: Install) -> None:
    installed("notes")
    merged = load_plugins(allow=["accounts", "notes"]).metadata
    engine = sa.create_engine("sqlite://")  # an empty database
    try:
        with engine.connect() as conn:
            diffs: list[Any] = compare_metadata(MigrationContext.configure(conn), merged)
    finally:
        engine.dispose()

    added = {d[1].name: d[1] for d in diffs if d[0] == "add_table"}
    assert set(added) == ACCOUNTS_TABLES | {"note"}
    assert {c.name for c in added["note"].constraints} >= {
        "pk_note",
        "uq_note_slug",
        "fk_note_author_id_user",
        "ck_note_priority_range",
    }


def test_alembic_autogenerate_writes_a_revision_for_an_installed_plugin(
    plugin_dists: dict[str, Path], tmp_path: Path
) -> None:
    """The docs/plugins.md flow, end to end with the alembic CLI on a copy of the host."""
    repo = Path(__file__).parents[2]
    shutil.copy(repo / "alembic.ini", tmp_path / "alembic.ini")
    shutil.copytree(
        repo / "alembic", tmp_path / "alembic", ignore=shutil.ignore_patterns("__pycache__")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    env |= {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'app.sqlite'}",
        "PYTHONPATH": str(plugin_dists["notes"]),  # the notes wheel is "pip installed" here
    }
    alembic = str(Path(sys.executable).with_name("alembic"))

    def run(*args: str, **extra: str) -> str:
        proc = subprocess.run(
            [alembic, *args],
            cwd=tmp_path,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert proc.returncode == 0, f"alembic {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout + proc.stderr

    run("upgrade", "head", MOSAIC_PLUGINS="accounts,tasks")
    run("revision", "--autogenerate", "-m", "add notes", MOSAIC_PLUGINS="accounts,tasks,notes")

    [script] = (tmp_path / "alembic" / "versions").glob("*add_notes.py")
    text = script.read_text()
    assert 'op.create_table(\n        "note",' in text
    for name in ("pk_note", "uq_note_slug", "fk_note_author_id_user", "ck_note_priority_range"):
        assert f'op.f("{name}")' in text
    assert 'batch_op.f("ix_note_author_id")' in text
    assert "user" not in {line.strip() for line in text.splitlines() if "create_table" in line}
    run("upgrade", "head", MOSAIC_PLUGINS="accounts,tasks,notes")
    assert "No new upgrade operations detected" in run(
        "check", MOSAIC_PLUGINS="accounts,tasks,notes"
    )
    # With notes disabled, its table is not the host's business: no drift, nothing to drop.
    assert "No new upgrade operations detected" in run("check", MOSAIC_PLUGINS="accounts,tasks")
