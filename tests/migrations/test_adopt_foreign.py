"""Adopting a database that ANOTHER Alembic history manages (an application's own revisions in
``alembic_version``), on SQLite and PostgreSQL. The foreign history is a real one: its own
``env.py`` and revisions, run by plain Alembic on a sync engine."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from typer.testing import CliRunner

from sqlmosaic import MigrationError
from sqlmosaic.cli import build_app
from sqlmosaic.migrations import adopt, adopt_foreign, check, current, orphans, upgrade

from .helpers import HEAD, INI, counts, make_config, seed

ENV = """
from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
"""

#: The application's first revision: the tables accounts and tasks model, made from METADATA
#: (the merged metadata, or SQLModel's own one without a naming convention), and one of its own.
FIRST = '''
"""the application's tables"""
import sqlalchemy as sa
from alembic import op
from sqlmodel import SQLModel

from sqlmosaic import load_plugins

revision = "app0001"
down_revision = None


def upgrade() -> None:
    merged = load_plugins(allow=["accounts", "tasks"]).metadata
    metadata = METADATA
    tables = [metadata.tables[name] for name in merged.tables]
    metadata.create_all(op.get_bind(), tables=tables)
    op.create_table("legacy_audit", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    raise NotImplementedError
'''

SECOND = '''
"""the application's second revision"""
import sqlalchemy as sa
from alembic import op

revision = "app0002"
down_revision = "app0001"


def upgrade() -> None:
    op.add_column("legacy_audit", sa.Column("note", sa.String(50), nullable=True))


def downgrade() -> None:
    op.drop_column("legacy_audit", "note")
'''


def sync_url(url: str) -> str:
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


def run_foreign_history(url: str, directory: Path, *, metadata: str) -> None:
    """Write the application's history into ``directory`` and upgrade ``url`` with it."""
    (directory / "versions").mkdir(parents=True)
    (directory / "env.py").write_text(textwrap.dedent(ENV).lstrip())
    first = textwrap.dedent(FIRST).lstrip().replace("METADATA", metadata)
    (directory / "versions" / "app0001.py").write_text(first)
    (directory / "versions" / "app0002.py").write_text(textwrap.dedent(SECOND).lstrip())
    config = Config()
    config.set_main_option("script_location", str(directory))
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


async def test_a_database_under_another_history_is_adopted_when_its_schema_matches(
    db_url: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(
        run_foreign_history, db_url, tmp_path / "app_history", metadata="merged"
    )
    await seed(db_url)
    cfg = await asyncio.to_thread(make_config, db_url)
    assert await current(cfg) == ("app0002",)
    # Today's refusals, now with the way out named.
    with pytest.raises(MigrationError, match="none of the loaded histories"):
        await upgrade(cfg)
    with pytest.raises(MigrationError, match="--from-foreign-history"):
        await adopt(cfg)

    done = await adopt_foreign(cfg)
    assert done.replaced == ("app0002",)
    assert done.stamped == (HEAD,)
    assert await current(cfg) == (HEAD,)
    assert await check(cfg) == []
    assert await orphans(cfg) == ["legacy_audit"]
    assert (await counts(db_url))["task"] == 1
    assert await upgrade(cfg) == []
    # Adopted once: a second time is refused (it is sqlmosaic's history now).
    with pytest.raises(MigrationError, match="use 'mosaic db upgrade'"):
        await adopt_foreign(cfg)


def test_a_foreign_schema_that_differs_is_refused_with_the_differences(
    db_url: str, tmp_path: Path
) -> None:
    # SQLModel's own metadata has no naming convention: user_pkey / unnamed keys, team_name_key.
    run_foreign_history(db_url, tmp_path / "app_history", metadata="SQLModel.metadata")
    argv = ["db", "adopt", "--from-foreign-history", "--config", str(INI), "--database-url", db_url]
    result = CliRunner().invoke(build_app(), argv, env={"COLUMNS": "250"})
    assert result.exit_code == 1
    assert "refusing to adopt" in result.stderr
    assert "(alembic_version still says app0002)" in result.stderr
    assert "the naming convention says 'pk_user'" in result.stderr
    assert asyncio.run(current(make_config(db_url))) == ("app0002",)


async def test_foreign_adoption_of_an_unmanaged_database_is_refused(sqlite_url: str) -> None:
    cfg = await asyncio.to_thread(make_config, sqlite_url)
    with pytest.raises(MigrationError, match="records no Alembic revision"):
        await adopt_foreign(cfg)
