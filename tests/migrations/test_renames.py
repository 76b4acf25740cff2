"""``revision --autogenerate`` writes the renames ``check`` reports (``rename_*`` lines), for a
database whose names come from an older history: SQLModel's own metadata, no naming
convention (PostgreSQL's ``user_pkey``, SQLite's unnamed constraints)."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from sqlmosaic.cli import build_app
from sqlmosaic.migrations import check, diffs, downgrade, revision, stamp, upgrade

from .helpers import INI, counts, create_all, execute, make_config, seed


def executed(source: str, function: str) -> list[str]:
    """The SQL strings ``function`` of a revision passes to ``op.execute`` (pieces joined)."""
    tree = ast.parse(source)
    [fn] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
    return [
        call.args[0].value
        for call in ast.walk(fn)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "execute"
        and isinstance(call.args[0], ast.Constant)
    ]


async def test_autogenerate_writes_the_renames_and_check_is_then_green(
    db_url: str, scripts: Path, new_url: Callable[[], str]
) -> None:
    await create_all(db_url, metadata_of="sqlmodel")
    await seed(db_url)
    await execute(
        db_url, "DROP INDEX ix_task_status", "CREATE INDEX task_status_idx ON task (status)"
    )
    cfg = await asyncio.to_thread(make_config, db_url, scripts)
    await stamp(cfg, "heads")
    before = await check(cfg)
    assert any(line.startswith("rename_constraint") for line in before)
    assert any(line.startswith("rename_index: index (status) on task") for line in before)

    [script] = await revision(cfg, "conventional names", autogenerate=True)
    source = await asyncio.to_thread(Path(script.path).read_text)
    body = source.split("def upgrade() -> None:")[1].split("def downgrade")[0]
    if db_url.startswith("postgresql"):
        assert 'if op.get_bind().dialect.name == "postgresql":' in body
        joined = "\n".join(executed(source, "upgrade"))
        assert 'ALTER TABLE "user" RENAME CONSTRAINT "user_pkey" TO "pk_user"' in joined
        assert (
            'ALTER TABLE "task" RENAME CONSTRAINT "task_project_id_fkey" TO '
            '"fk_task_project_id_project"'
        ) in joined
        assert 'ALTER INDEX IF EXISTS "task_status_idx" RENAME TO "ix_task_status"' in joined
    else:
        assert 'if op.get_bind().dialect.name == "sqlite":' in body
        assert 'for table in ("membership", "project", "task", "team", "user"):' in body
        assert 'recreate="always",' in body
        assert 'op.drop_index("task_status_idx", table_name="task", if_exists=True)' in body

    await upgrade(cfg)
    assert await check(cfg) == []
    assert (await counts(db_url))["membership"] == 1  # the rebuilds kept the rows

    # Down and up again. PostgreSQL gets its old names back; SQLite keeps the conventional ones
    # (an unnamed constraint cannot be had back).
    await downgrade(cfg, "-1")
    old_pk = "rename_constraint: primary key (id) on user is 'user_pkey'"
    found = await diffs(cfg)
    assert any(line.startswith(old_pk) for line in found) == db_url.startswith("postgresql")
    await upgrade(cfg)
    assert await check(cfg) == []

    # The names came from outside the history here, so a fresh database has the conventional
    # ones already: the revision passes over it (each rename only where the old name exists).
    fresh = new_url()
    fresh_cfg = await asyncio.to_thread(make_config, fresh, scripts)
    await upgrade(fresh_cfg)
    assert await check(fresh_cfg) == []


def test_check_points_at_autogenerate_for_the_renames(sqlite_url: str) -> None:
    asyncio.run(create_all(sqlite_url, metadata_of="sqlmodel"))
    where = ["--database-url", sqlite_url, "--config", str(INI)]
    assert CliRunner().invoke(build_app(), ["db", "stamp", "heads", *where]).exit_code == 0
    result = CliRunner().invoke(build_app(), ["db", "check", *where], env={"COLUMNS": "250"})
    assert result.exit_code == 1
    assert "mosaic db revision --autogenerate writes the renames" in result.stdout
