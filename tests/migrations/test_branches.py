"""Plugin-owned histories: the reference host as shipped (accounts + tasks in the host's merged
history, ``comments`` on its own branch) and an in-test plugin whose branch is written here.

Every test with ``db_url`` runs on a SQLite file and on a PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, text
from typer.testing import CliRunner

import mosaic_comments.plugin
from sqlmosaic import MigrationError, MosaicSettings, create_engine, hookimpl
from sqlmosaic.cli import build_app
from sqlmosaic.migrations import (
    alembic_config,
    check,
    current,
    downgrade,
    final_heads_of,
    heads,
    orphans,
    revision,
    upgrade,
)

from .helpers import FIRST, INI, REPO, TablePlugin, counts, seed, table_names

pytestmark = pytest.mark.plugin_branches

COMMENTS_DIR = Path(mosaic_comments.plugin.__file__).parent / "migrations"
[COMMENTS_FIRST] = [p.name.split("-", 1)[1].split("_", 1)[0] for p in COMMENTS_DIR.glob("*.py")]
HOST_TABLES = {"user", "team", "membership", "project", "task"}
#: the head of the host's own history (alembic.ini alone, no plugin branch)
[HOST_HEAD] = ScriptDirectory.from_config(Config(str(INI))).get_heads()


async def add_comment(url: str) -> None:
    engine = create_engine(MosaicSettings(database_url=url))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO comment (id, task_id, author_id, body, created_at) "
                    "VALUES (1, 1, 1, 'looks good', CURRENT_TIMESTAMP)"
                )
            )
    finally:
        await engine.dispose()


async def comment_count(url: str) -> int:
    engine = create_engine(MosaicSettings(database_url=url))
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM comment"))).scalar_one())
    finally:
        await engine.dispose()


def read(path: str) -> str:
    return Path(path).read_text()


def host_config(url: str, ini: Path = INI, **kwargs: Any) -> Config:
    """alembic_config() of the reference host (reads the .ini: test setup, allowed on the loop
    by pyproject's mosaic_blocking_allow)."""
    return alembic_config(ini, url=url, **kwargs)


def cli(*args: str, url: str, env: dict[str, str] | None = None) -> Any:
    argv = ["db", *args, "--config", str(INI), "--database-url", url]
    return CliRunner().invoke(build_app(), argv, env={"COLUMNS": "250", **(env or {})})


def test_the_comments_branch_is_composed_at_run_time() -> None:
    cfg = alembic_config(INI, url="sqlite+aiosqlite:///unused.db")
    # alembic.ini names no plugin directory: the enabled plugin's own one is added at run time.
    assert "version_locations" not in INI.read_text().split("[post_write_hooks]")[0]
    assert cfg.get_version_locations_list() == [
        str(REPO / "alembic" / "versions"),
        str(COMMENTS_DIR),
    ]
    assert heads(cfg) == (HOST_HEAD, COMMENTS_FIRST)
    comments = ScriptDirectory.from_config(cfg).get_revision(COMMENTS_FIRST)
    assert comments is not None
    assert comments.dependencies == HOST_HEAD
    # comments' first revision depends on the host revision creating task and user: "upgrade
    # heads" records only comments' head.
    assert final_heads_of(cfg) == (COMMENTS_FIRST,)
    # A disabled plugin's directory is not composed.
    disabled = alembic_config(INI, settings=MosaicSettings(plugins=["accounts", "tasks"]))
    assert heads(disabled) == (HOST_HEAD,)


async def test_upgrade_from_empty_applies_every_branch_in_dependency_order(db_url: str) -> None:
    cfg = host_config(db_url)
    applied = await upgrade(cfg)
    assert [a.revision for a in applied] == [FIRST, HOST_HEAD, COMMENTS_FIRST]
    assert await table_names(db_url) == HOST_TABLES | {"comment", "alembic_version"}
    assert await current(cfg) == (COMMENTS_FIRST,)
    assert await check(cfg) == []
    # The same verdict as plain Alembic's check (which raises on any difference).
    await asyncio.to_thread(command.check, host_config(db_url))


async def test_downgrade_of_one_branch_drops_only_its_tables(db_url: str) -> None:
    cfg = host_config(db_url)
    await upgrade(cfg)
    await seed(db_url)
    await add_comment(db_url)

    undone = await downgrade(cfg, "comments@-1")
    assert [a.revision for a in undone] == [COMMENTS_FIRST]
    assert await table_names(db_url) == HOST_TABLES | {"alembic_version"}
    assert await counts(db_url) == {
        "user": 1,
        "team": 1,
        "membership": 1,
        "project": 1,
        "task": 1,
        "assignee": 1,
    }
    assert await current(cfg) == (HOST_HEAD,)

    await upgrade(cfg)
    assert [a.revision for a in await downgrade(cfg, "comments@base")] == [COMMENTS_FIRST]
    assert await current(cfg) == (HOST_HEAD,)


def test_check_and_autogenerate_accept_a_database_at_the_heads(db_url: str) -> None:
    # The bug: after "upgrade heads" the database records only comments' head; check and
    # revision --autogenerate compared it with every head and refused.
    assert cli("upgrade", "heads", url=db_url).exit_code == 0
    result = cli("check", url=db_url)
    assert result.exit_code == 0, result.output
    assert "OK: the models match the migrations" in result.stdout
    for extra in ([], ["--plugin", "comments"]):
        written = cli("revision", "--autogenerate", "-m", "nothing", *extra, url=db_url)
        assert written.exit_code == 0, written.output
        assert "nothing written" in written.stdout
    current_out = cli("current", url=db_url).stdout
    assert f"{COMMENTS_FIRST} (comments) (head)" in current_out
    assert f"at every head ({HOST_HEAD} applied as a dependency)" in current_out


def test_a_database_short_of_a_branch_head_is_not_at_the_heads(sqlite_url: str) -> None:
    assert cli("upgrade", HOST_HEAD, url=sqlite_url).exit_code == 0
    result = cli("check", url=sqlite_url)
    assert result.exit_code == 1
    assert f"the database is at {HOST_HEAD}, not at the heads ({COMMENTS_FIRST})" in result.stderr
    with pytest.raises(Exception, match="Target database is not up to date"):
        command.check(host_config(sqlite_url))


async def test_disabling_a_branch_plugin_leaves_its_tables_untouched(db_url: str) -> None:
    await upgrade(host_config(db_url))
    await seed(db_url)
    await add_comment(db_url)

    settings = MosaicSettings(database_url=db_url, plugins=["accounts", "tasks"])
    cfg = host_config(db_url, settings=settings)
    assert await orphans(cfg) == ["comment"]
    with pytest.raises(MigrationError, match=r"records revision '[0-9a-f]+', which none of the"):
        await upgrade(cfg)
    with pytest.raises(MigrationError, match="disabled or uninstalled plugin's branch"):
        await downgrade(cfg, "-1")
    assert await comment_count(db_url) == 1
    assert await current(host_config(db_url)) == (COMMENTS_FIRST,)
    # Enabled again, it is where it was.
    assert await check(host_config(db_url)) == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_plain_alembic_upgrade_head_and_downgrade_minus_one_from_the_repo_root(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url: str = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    env["DATABASE_URL"] = url

    def alembic(*args: str) -> str:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "alembic"), *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    log = alembic("upgrade", "head")
    assert f"Running upgrade  -> {FIRST}" in log
    assert f"Running upgrade {FIRST} -> {HOST_HEAD}" in log
    assert f"Running upgrade  -> {COMMENTS_FIRST}" in log
    assert asyncio.run(table_names(url)) == HOST_TABLES | {"comment", "alembic_version"}
    assert "No new upgrade operations detected" in alembic("check")
    assert f"Running downgrade {COMMENTS_FIRST} -> ," in alembic("downgrade", "-1")
    assert asyncio.run(table_names(url)) == HOST_TABLES | {"alembic_version"}
    assert f"Running downgrade {HOST_HEAD} -> " in alembic("downgrade", "-1")
    assert f"Running downgrade {FIRST} -> ," in alembic("downgrade", "base")
    assert asyncio.run(table_names(url)) == {"alembic_version"}


def test_plain_alembic_config_gets_the_branches_from_the_environment(sqlite_url: str) -> None:
    # A Config made as the alembic command makes it (no sqlmosaic Config): run_env composes.
    cfg = Config(str(INI))
    cfg.attributes["mosaic_url"] = sqlite_url
    command.upgrade(cfg, "head")
    assert asyncio.run(current(host_config(sqlite_url))) == (COMMENTS_FIRST,)


# ------------------------------------------------------------------ a plugin written here


def ratings_plugin(directory: Path) -> Any:
    """A plugin owning table ``rating`` (FKs into tasks and comments), history in ``directory``."""
    metadata = MetaData()
    rating = Table(
        "rating",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("comment_id", Integer, ForeignKey("comment.id", ondelete="CASCADE"), index=True),
        Column("task_id", Integer, ForeignKey("task.id", ondelete="CASCADE"), index=True),
        Column("stars", Integer, nullable=False),
        Column("note", String(200), nullable=True),
    )

    class Ratings(TablePlugin):
        @hookimpl
        def mosaic_migrations(self) -> Path:
            return directory

    return Ratings([rating], requires=["tasks", "comments"])


async def test_autogenerate_for_a_plugin_writes_only_its_tables_with_depends_on(
    db_url: str, tmp_path: Path, scripts: Path
) -> None:
    history = tmp_path / "ratings_migrations"
    await asyncio.to_thread(history.mkdir)
    ini = scripts.parent / "alembic.ini"
    cfg = host_config(db_url, ini, plugins={"ratings": ratings_plugin(history)})
    await upgrade(cfg)
    assert "rating" not in await table_names(db_url)

    # The host's revision leaves the plugin-owned table out: an empty revision, on the host's
    # head, in the host's directory.
    [host] = await revision(cfg, "host scope", autogenerate=True)
    assert Path(host.path).parent == scripts / "versions"
    assert host.down_revision == HOST_HEAD
    body = read(host.path)
    assert "rating" not in body
    upgrade_body = body.split("def upgrade() -> None:")[1].split("def downgrade")[0]
    code = [line.strip() for line in upgrade_body.splitlines() if line.strip()]
    assert [line for line in code if not line.startswith("#")] == ["pass"]
    await asyncio.to_thread(Path(host.path).unlink)
    assert await asyncio.to_thread(lambda: list(history.iterdir())) == []

    [script] = await revision(cfg, "create rating table", autogenerate=True, plugin="ratings")
    assert Path(script.path).parent == history
    source = read(script.path)
    assert script.branch_labels == {"ratings"}
    assert script.down_revision is None
    # comments' head is the only dependency: it already implies the host's revision.
    assert script.dependencies == COMMENTS_FIRST
    assert 'op.create_table(\n        "rating"' in source
    for table in HOST_TABLES | {"comment"}:
        assert f'"{table}",' not in source.split("def upgrade")[1].split("def downgrade")[0]

    applied = await upgrade(cfg)
    assert [a.revision for a in applied] == [script.revision]
    assert await check(cfg) == []
    assert set(await current(cfg)) == {script.revision}

    # The next revision of the branch continues it.
    [second] = await revision(cfg, "tune ratings", plugin="ratings")
    assert second.down_revision == script.revision
    assert Path(second.path).parent == history

    # Only the plugin's branch comes down; comments and the host stay.
    await downgrade(cfg, "ratings@base")
    assert "rating" not in await table_names(db_url)
    assert {"comment", "task"} <= await table_names(db_url)


async def test_revision_for_a_plugin_without_a_history_or_not_enabled_is_refused(
    sqlite_url: str,
) -> None:
    cfg = host_config(sqlite_url)
    with pytest.raises(MigrationError, match="plugin 'tasks' has no history of its own"):
        await revision(cfg, "x", plugin="tasks")
    with pytest.raises(MigrationError, match=r"plugin 'nope' is not enabled"):
        await revision(cfg, "x", plugin="nope")
    with pytest.raises(MigrationError, match="leave out head"):
        await revision(cfg, "x", plugin="comments", head="base")
