"""Shared pieces of the migration tests: paths, test-only revisions, in-test plugins."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic.config import Config
from sqlalchemy import MetaData, Table, inspect, text
from sqlmodel import SQLModel

from sqlmosaic import Mosaic, MosaicSettings, create_engine, hookimpl, load_plugins
from sqlmosaic.migrations import alembic_config

REPO = Path(__file__).resolve().parents[2]
INI = REPO / "alembic.ini"
FIRST = "eab1d300f7dd"  # create accounts and tasks tables
HEAD = "663d7d9988c1"  # add idempotency key to task: the head of the shipped history
#: every shipped revision, oldest first
SHIPPED = (FIRST, HEAD)

#: A second, test-only revision: rebuilds "user" on SQLite (batch), so it also proves that
#: rows of other tables referencing "user" (ON DELETE CASCADE) survive the rebuild.
NICKNAME = '''
"""add nickname to user"""
import sqlalchemy as sa
from alembic import op

revision = "r2nickname"
down_revision = "663d7d9988c1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user") as batch_op:
        batch_op.add_column(sa.Column("nickname", sa.String(50), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user") as batch_op:
        batch_op.drop_column("nickname")
'''

#: Fails half-way: a table created, "user" rebuilt, a row inserted, then an error.
FAILING = '''
"""add note table then fail"""
import sqlalchemy as sa
from alembic import op

revision = "r3failing"
down_revision = "r2nickname"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("note", sa.Column("id", sa.Integer, primary_key=True))
    with op.batch_alter_table("user") as batch_op:
        batch_op.add_column(sa.Column("karma", sa.Integer, nullable=True))
    op.execute("INSERT INTO note (id) VALUES (1)")
    op.execute("SELECT * FROM no_such_table")


def downgrade() -> None:
    op.drop_table("note")
'''

#: Needs an ACCESS EXCLUSIVE lock on "team" (PostgreSQL), or sleeps (statement timeout).
LOCKING = '''
"""add motto to team"""
import sqlalchemy as sa
from alembic import op

revision = "r3locking"
down_revision = "r2nickname"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("team", sa.Column("motto", sa.String(100), nullable=True))


def downgrade() -> None:
    op.drop_column("team", "motto")
'''

SLEEPING = '''
"""sleep"""
from alembic import op

revision = "r3sleeping"
down_revision = "r2nickname"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("SELECT pg_sleep(3)")


def downgrade() -> None:
    pass
'''


def add_revision(scripts: Path, name: str, source: str) -> Path:
    path = scripts / "versions" / f"{name}.py"
    path.write_text(textwrap.dedent(source).lstrip())
    return path


def make_config(url: str, scripts: Path | None = None, **kwargs: Any) -> Config:
    ini = scripts.parent / "alembic.ini" if scripts is not None else INI
    return alembic_config(ini, url=url, **kwargs)


# ------------------------------------------------------------------ in-test plugins


class Model:
    """A stand-in model: all a plugin's ``mosaic_models`` needs is ``__table__``."""

    __table__: Table


def model(table: Table) -> type[Any]:
    return type(f"Model_{table.name}", (Model,), {"__table__": table})


class TablePlugin:
    """An explicit plugin contributing ``tables`` (and requiring ``requires``)."""

    def __init__(self, tables: list[Table], requires: list[str] | None = None) -> None:
        self._models = [model(t) for t in tables]
        self._requires = requires or []

    @hookimpl
    def mosaic_models(self) -> list[type[Any]]:
        return self._models

    @hookimpl
    def mosaic_requires(self) -> list[str]:
        return self._requires

    @hookimpl
    def mosaic_repositories(self) -> list[type[Any]]:
        return []


def installed_tables() -> dict[str, Table]:
    """The first-party plugins' tables, copied into a private MetaData (safe to change)."""
    copy = MetaData()
    merged = load_plugins(allow=["accounts", "tasks"]).metadata
    return {name: table.to_metadata(copy) for name, table in merged.tables.items()}


# ------------------------------------------------------------------ rows


async def seed(url: str) -> None:
    """One user, team, membership, project and task (raw Core inserts, real engine)."""
    tables = load_plugins(allow=["accounts", "tasks"]).metadata.tables
    now = datetime.now(UTC)
    engine = create_engine(MosaicSettings(database_url=url))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                tables["user"].insert(),
                [
                    {
                        "id": 1,
                        "email": "ada@example.com",
                        "name": "Ada",
                        "is_active": True,
                        "created_at": now,
                    }
                ],
            )
            await conn.execute(
                tables["team"].insert(), [{"id": 1, "name": "core", "created_at": now}]
            )
            await conn.execute(
                tables["membership"].insert(), [{"team_id": 1, "user_id": 1, "role": "owner"}]
            )
            await conn.execute(
                tables["project"].insert(),
                [{"id": 1, "name": "p", "description": "", "created_at": now}],
            )
            await conn.execute(
                tables["task"].insert(),
                [
                    {
                        "id": 1,
                        "project_id": 1,
                        "title": "t",
                        "status": "open",
                        "priority": 0,
                        "assignee_id": 1,
                        "created_at": now,
                    }
                ],
            )
    finally:
        await engine.dispose()


async def counts(url: str) -> dict[str, int]:
    """Row counts of the five tables, plus task.assignee_id of task 1 (-1 if NULL)."""
    engine = create_engine(MosaicSettings(database_url=url))
    try:
        async with engine.connect() as conn:
            found = {}
            for name in ("user", "team", "membership", "project", "task"):
                result = await conn.execute(text(f'SELECT count(*) FROM "{name}"'))
                found[name] = int(result.scalar_one())
            assignee = await conn.execute(text("SELECT assignee_id FROM task WHERE id = 1"))
            value = assignee.scalar_one_or_none()
            found["assignee"] = -1 if value is None else int(value)
            return found
    finally:
        await engine.dispose()


async def table_names(url: str) -> set[str]:
    engine = create_engine(MosaicSettings(database_url=url))
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def column_names(url: str, table: str) -> set[str]:
    engine = create_engine(MosaicSettings(database_url=url))
    try:
        async with engine.connect() as conn:
            columns = await conn.run_sync(lambda sync: inspect(sync).get_columns(table))
            return {c["name"] for c in columns}
    finally:
        await engine.dispose()


async def execute(url: str, *statements: str) -> None:
    engine = create_engine(MosaicSettings(database_url=url))
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


#: Leaves a task pointing at a user that does not exist.
DANGLING = '''
"""insert a dangling task"""
from alembic import op

revision = "r3dangling"
down_revision = "r2nickname"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "INSERT INTO task (id, project_id, title, status, priority, assignee_id, created_at) "
        "VALUES (2, 1, 'x', 'open', 0, 999, CURRENT_TIMESTAMP)"
    )


def downgrade() -> None:
    op.execute("DELETE FROM task WHERE id = 2")
'''


async def create_all(url: str, *, metadata_of: str = "merged") -> None:
    """The schema as ``metadata.create_all`` makes it, outside Alembic."""
    mosaic = Mosaic(MosaicSettings(database_url=url, plugins=["accounts", "tasks"]))
    metadata = mosaic.metadata if metadata_of == "merged" else SQLModel.metadata
    async with mosaic, mosaic.engine.begin() as conn:
        tables = [metadata.tables[name] for name in mosaic.metadata.tables]
        await conn.run_sync(lambda sync: metadata.create_all(sync, tables=tables))
