"""``squash``: a plugin's branch replaced by one revision (Django's ``squashmigrations``).

An in-test plugin ``memos`` (table ``memo``, a foreign key into tasks) ships three revisions; the
reference host's accounts, tasks and comments are there too. Databases at base and at each of
the three revisions exist before the squash; after it, every one of them upgrades to the heads
and matches the models, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Boolean, Column, ForeignKey, Integer, MetaData, String, Table, inspect, text
from typer.testing import CliRunner

from sqlmosaic import MigrationError, MosaicSettings, create_engine, hookimpl
from sqlmosaic.cli import build_app
from sqlmosaic.migrations import (
    alembic_config,
    check,
    current,
    downgrade,
    final_heads_of,
    squash,
    upgrade,
)

from .helpers import INI, TablePlugin, seed, table_names

pytestmark = pytest.mark.plugin_branches

HOST_HEAD = "663d7d9988c1"

M1 = f'''
"""create memo table"""
import sqlalchemy as sa
from alembic import op

revision = "m1create"
down_revision = None
branch_labels = ("memos",)
depends_on = "{HOST_HEAD}"


def upgrade() -> None:
    op.create_table(
        "memo",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name="fk_memo_task_id_task", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_memo"),
    )
    op.create_index("ix_memo_task_id", "memo", ["task_id"])


def downgrade() -> None:
    op.drop_index("ix_memo_task_id", table_name="memo")
    op.drop_table("memo")
'''

M2 = '''
"""add pinned to memo"""
import sqlalchemy as sa
from alembic import op

revision = "m2pinned"
down_revision = "m1create"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("memo") as batch_op:
        batch_op.add_column(sa.Column("pinned", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("memo") as batch_op:
        batch_op.drop_column("pinned")
'''

M3 = '''
"""index memo pinned"""
from alembic import op

revision = "m3index"
down_revision = "m2pinned"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_memo_pinned", "memo", ["pinned"])


def downgrade() -> None:
    op.drop_index("ix_memo_pinned", table_name="memo")
'''

OLD_CHAIN = ("m1create", "m2pinned", "m3index")


def memos_plugin(directory: Path, *, body_length: int = 200) -> Any:
    metadata = MetaData()
    memo = Table(
        "memo",
        metadata,
        Column("id", Integer, primary_key=True),
        Column(
            "task_id",
            Integer,
            ForeignKey("task.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        Column("body", String(body_length), nullable=False),
        Column("pinned", Boolean, nullable=True, index=True),
    )

    class Memos(TablePlugin):
        @hookimpl
        def mosaic_migrations(self) -> Path:
            return directory

    return Memos([memo], requires=["tasks"])


def write_chain(directory: Path) -> None:
    directory.mkdir()
    for name, source in zip(OLD_CHAIN, (M1, M2, M3), strict=True):
        (directory / f"{name}.py").write_text(textwrap.dedent(source).lstrip())


def sync_config(url: str, history: Path, **plugin_kwargs: Any) -> Config:
    return alembic_config(INI, url=url, plugins={"memos": memos_plugin(history, **plugin_kwargs)})


async def config_for(url: str, history: Path, **plugin_kwargs: Any) -> Config:
    """The host's config with ``memos`` (it reads alembic.ini: off the loop)."""
    return await asyncio.to_thread(sync_config, url, history, **plugin_kwargs)


async def memo_schema(url: str) -> dict[str, Any]:
    """What the database says about ``memo``: columns, keys and indexes, names included."""
    engine = create_engine(MosaicSettings(database_url=url))
    try:
        async with engine.connect() as conn:

            def read(sync: Any) -> dict[str, Any]:
                inspector = inspect(sync)
                return {
                    "columns": [
                        (c["name"], str(c["type"]), c["nullable"])
                        for c in inspector.get_columns("memo")
                    ],
                    "pk": inspector.get_pk_constraint("memo"),
                    "fks": inspector.get_foreign_keys("memo"),
                    "indexes": sorted(
                        (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                        for i in inspector.get_indexes("memo")
                    ),
                }

            return await conn.run_sync(read)
    finally:
        await engine.dispose()


async def memo_bodies(url: str) -> list[str]:
    engine = create_engine(MosaicSettings(database_url=url))
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT body FROM memo ORDER BY id"))
            return [str(r[0]) for r in rows]
    finally:
        await engine.dispose()


async def test_squash_replaces_the_branch_and_every_older_database_still_upgrades(
    db_url: str, new_url: Callable[[], str], tmp_path: Path
) -> None:
    history = tmp_path / "memos_migrations"
    await asyncio.to_thread(write_chain, history)
    # Before the squash: one database through the old chain to the heads (the reference
    # schema), and one stopped at each revision of the branch (one with a row in it).
    reference = db_url
    await upgrade(await config_for(reference, history))
    at: dict[str, str] = {}
    for rev in OLD_CHAIN:
        at[rev] = new_url()
        await upgrade(await config_for(at[rev], history), rev)
    await seed(at["m1create"])
    engine = create_engine(MosaicSettings(database_url=at["m1create"]))
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO memo (id, task_id, body) VALUES (1, 1, 'kept')"))
    await engine.dispose()
    old_schema = await memo_schema(reference)

    squashed = await squash(await config_for(db_url, history), "memos")

    assert squashed.down_revision is None
    assert squashed.branch_labels == {"memos"}
    assert squashed.dependencies == HOST_HEAD
    assert squashed.module.replaces == OLD_CHAIN
    files = await asyncio.to_thread(lambda: sorted(p.name for p in history.glob("*.py")))
    assert files == [Path(squashed.path).name]
    moved = await asyncio.to_thread(lambda: sorted(p.stem for p in history.glob("replaced/*.py")))
    assert moved == sorted(OLD_CHAIN)

    # A fresh database takes the squashed revision alone, and gets the old chain's schema.
    fresh = new_url()
    cfg = await config_for(fresh, history)
    applied = [a.revision for a in await upgrade(cfg)]
    assert squashed.revision in applied
    assert not set(applied) & set(OLD_CHAIN)
    assert await check(cfg) == []
    await asyncio.to_thread(lambda: command.check(sync_config(fresh, history)))
    assert await memo_schema(fresh) == old_schema

    # A database at any point of the old chain upgrades: the rest of the chain, then the
    # squashed revision (an empty step there), and is at the heads with the same schema.
    for rev, url in at.items():
        cfg = await config_for(url, history)
        with pytest.raises(MigrationError, match=f"the squashed revision '{squashed.revision}'"):
            await check(cfg)
        steps = [a.revision for a in await upgrade(cfg)]
        rest = list(OLD_CHAIN[OLD_CHAIN.index(rev) + 1 :])
        assert [s for s in steps if s in OLD_CHAIN] == rest
        assert squashed.revision in steps
        assert squashed.revision in await current(cfg)
        assert await check(cfg) == []
        assert await memo_schema(url) == old_schema
        assert await upgrade(cfg) == []  # from now on the squashed history
    assert await memo_bodies(at["m1create"]) == ["kept"]
    # The reference database (at the old head with every branch) moves by the empty step only.
    cfg = await config_for(reference, history)
    assert [a.revision for a in await upgrade(cfg)] == [squashed.revision]
    assert await check(cfg) == []

    # The plugin's branch still comes down: the squashed revision drops its table only.
    cfg = await config_for(fresh, history)
    assert [a.revision for a in await downgrade(cfg, "memos@base")] == [squashed.revision]
    assert "memo" not in await table_names(fresh)
    assert {"task", "comment"} <= await table_names(fresh)
    await upgrade(cfg)
    cfg = await config_for(at["m1create"], history)
    assert [a.revision for a in await downgrade(cfg, "memos@-1")] == [squashed.revision]
    assert "memo" not in await table_names(at["m1create"])


async def test_a_database_at_an_old_revision_can_still_step_down_the_old_chain(
    sqlite_url: str, tmp_path: Path
) -> None:
    history = tmp_path / "memos_migrations"
    await asyncio.to_thread(write_chain, history)
    cfg = await config_for(sqlite_url, history)
    await upgrade(cfg, "m2pinned")
    scratch = tmp_path / "scratch.db"
    await squash(await config_for(f"sqlite+aiosqlite:///{scratch}", history), "memos")
    assert [a.revision for a in await downgrade(cfg, "memos@-1")] == ["m2pinned"]
    assert await current(cfg) == ("m1create",)
    assert [a.revision for a in await downgrade(cfg, "memos@base")] == ["m1create"]
    assert "memo" not in await table_names(sqlite_url)


async def test_a_branch_that_does_not_produce_its_models_is_not_squashed(
    sqlite_url: str, tmp_path: Path
) -> None:
    history = tmp_path / "memos_migrations"
    await asyncio.to_thread(write_chain, history)
    cfg = await config_for(sqlite_url, history, body_length=500)  # the chain says 200
    with pytest.raises(MigrationError, match="does not produce its models"):
        await squash(cfg, "memos")
    files = await asyncio.to_thread(lambda: sorted(p.stem for p in history.rglob("*.py")))
    assert files == sorted(OLD_CHAIN)  # nothing written, nothing moved


def test_squash_refuses_a_branch_of_one_revision_and_a_plugin_without_history(
    sqlite_url: str,
) -> None:
    def run(*args: str) -> Any:
        argv = ["db", "squash", *args, "--config", str(INI), "--database-url", sqlite_url]
        return CliRunner().invoke(build_app(), argv, env={"COLUMNS": "250"})

    one = run("--plugin", "comments")
    assert one.exit_code == 1
    assert "plugin 'comments' has 1 revision(s): nothing to squash" in one.stderr
    none = run("--plugin", "tasks")
    assert none.exit_code == 1
    assert "plugin 'tasks' has no history of its own" in none.stderr


T1 = '''
"""create memo_tag table"""
import sqlalchemy as sa
from alembic import op

revision = "t1create"
down_revision = None
branch_labels = ("tags",)
depends_on = "DEPENDENCY"


def upgrade() -> None:
    op.create_table(
        "memo_tag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("memo_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["memo_id"], ["memo.id"], name="fk_memo_tag_memo_id_memo"),
        sa.PrimaryKeyConstraint("id", name="pk_memo_tag"),
    )


def downgrade() -> None:
    op.drop_table("memo_tag")
'''


def tags_plugin(directory: Path) -> Any:
    metadata = MetaData()
    memo_tag = Table(
        "memo_tag",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("memo_id", Integer, ForeignKey("memo.id"), nullable=False),
    )

    class Tags(TablePlugin):
        @hookimpl
        def mosaic_migrations(self) -> Path:
            return directory

    return Tags([memo_tag], requires=["memos"])


@pytest.mark.parametrize("dependency", ["m3index", "m2pinned"])
async def test_another_plugins_revision_depending_on_a_replaced_one_follows_the_squash(
    db_url: str, new_url: Callable[[], str], tmp_path: Path, dependency: str
) -> None:
    """A plugin requiring ``memos`` wrote ``depends_on`` a ``memos`` revision before the squash
    (it lives in another package, so the squash cannot edit it): it now reads as depending on
    the squashed revision. The older database went to the heads before the squash (as
    docs/migrations.md asks): at ``t1create`` alone (the whole chain applied as its dependency)
    or at ``t1create`` and ``m3index`` (``t1create`` depends on a middle revision)."""
    history, tags = tmp_path / "memos_migrations", tmp_path / "tags_migrations"

    def prepare() -> None:
        write_chain(history)
        tags.mkdir()
        source = textwrap.dedent(T1).lstrip().replace("DEPENDENCY", dependency)
        (tags / "t1create.py").write_text(source)

    await asyncio.to_thread(prepare)

    def config(url: str) -> Config:
        plugins = {"memos": memos_plugin(history), "tags": tags_plugin(tags)}
        return alembic_config(INI, url=url, plugins=plugins)

    older = db_url
    cfg = await asyncio.to_thread(config, older)
    await upgrade(cfg)
    recorded = {"m3index": {"t1create"}, "m2pinned": {"t1create", "m3index"}}[dependency]
    assert set(await current(cfg)) & {"t1create", "m3index"} == recorded
    squashed = await squash(await asyncio.to_thread(config, new_url()), "memos")

    fresh = new_url()
    cfg = await asyncio.to_thread(config, fresh)
    applied = [a.revision for a in await upgrade(cfg)]
    assert applied.index(squashed.revision) < applied.index("t1create")
    assert await check(cfg) == []
    assert "t1create" in await asyncio.to_thread(final_heads_of, cfg)

    cfg = await asyncio.to_thread(config, older)
    steps = [
        a.revision for a in await upgrade(cfg) if a.revision in {*OLD_CHAIN, squashed.revision}
    ]
    if dependency == "m3index":
        assert steps == []  # the whole chain was applied: as good as the squashed revision
    else:
        assert steps == [squashed.revision]  # the empty step from m3index
    assert "t1create" in await current(cfg)
    assert squashed.revision not in await current(cfg)  # implied by t1create
    assert await check(cfg) == []
    assert await memo_schema(older) == await memo_schema(fresh)


M4 = '''
"""nothing yet"""
revision = "m4empty"
down_revision = "SQUASHED"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
'''


async def test_a_squashed_branch_can_be_squashed_again(sqlite_url: str, tmp_path: Path) -> None:
    history = tmp_path / "memos_migrations"
    await asyncio.to_thread(write_chain, history)
    at_m1 = sqlite_url
    await upgrade(await config_for(at_m1, history), "m1create")
    scratch = f"sqlite+aiosqlite:///{tmp_path / 'scratch.db'}"
    first = await squash(await config_for(scratch, history), "memos")
    source = textwrap.dedent(M4).lstrip().replace("SQUASHED", first.revision)
    await asyncio.to_thread((history / "m4empty.py").write_text, source)
    second = await squash(await config_for(scratch, history), "memos")
    assert second.module.replaces == (first.revision, "m4empty")
    moved = await asyncio.to_thread(lambda: {p.stem for p in history.glob("replaced/*.py")})
    assert {*OLD_CHAIN, "m4empty", Path(first.path).stem} == moved

    cfg = await config_for(at_m1, history)
    steps = [a.revision for a in await upgrade(cfg)]
    assert [s for s in steps if s in {*OLD_CHAIN, "m4empty", first.revision, second.revision}] == [
        "m2pinned",
        "m3index",
        first.revision,
        "m4empty",
        second.revision,
    ]
    assert second.revision in await current(cfg)
    assert await check(cfg) == []
