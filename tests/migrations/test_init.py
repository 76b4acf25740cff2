"""``mosaic init``: a new host from the templates shipped in the package; post-write hooks only
when their module is importable."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from typer.testing import CliRunner

import sqlmosaic.migrations
from sqlmosaic.cli import build_app
from sqlmosaic.migrations import alembic_config

from .helpers import INI


def test_mosaic_init_writes_a_host_that_migrates(tmp_path: Path, sqlite_url: str) -> None:
    host = tmp_path / "host"
    result = CliRunner().invoke(build_app(), ["init", str(host)])
    assert result.exit_code == 0, result.output
    templates = Path(sqlmosaic.migrations.__file__).parent / "_templates"
    assert (host / "alembic" / "env.py").read_text() == (templates / "env.py").read_text()
    assert "sqlmodel" in (host / "alembic" / "script.py.mako").read_text()
    ini = (host / "alembic.ini").read_text()
    assert "sqlalchemy.url =" not in ini
    assert "ruff_format.module = ruff" in ini  # ruff is importable in this environment

    config = ["--config", str(host / "alembic.ini"), "--database-url", sqlite_url]
    runner = CliRunner()
    made = runner.invoke(
        build_app(), ["db", "revision", "--autogenerate", "-m", "create tables", *config]
    )
    assert made.exit_code == 0, made.output
    [first] = (host / "alembic" / "versions").glob("*_create_tables.py")
    assert 'op.create_table(\n        "user"' in first.read_text()  # formatted by ruff
    assert runner.invoke(build_app(), ["db", "upgrade", *config]).exit_code == 0
    checked = runner.invoke(build_app(), ["db", "check", *config])
    assert checked.exit_code == 0, checked.output

    again = CliRunner().invoke(build_app(), ["init", str(host)])
    assert again.exit_code == 1
    assert "refusing to overwrite" in again.stderr


def test_a_post_write_hook_whose_module_is_missing_is_skipped(
    tmp_path: Path, sqlite_url: str, scripts: Path
) -> None:
    ini = scripts.parent / "alembic.ini"
    ini.write_text(INI.read_text().replace("module = ruff", "module = no_such_formatter_module"))
    # Control: plain Alembic runs the hook and fails on the missing module.
    with pytest.raises(Exception, match="no_such_formatter_module"):
        command.revision(Config(str(ini)), message="plain")
    for leftover in (scripts / "versions").glob("*_plain.py"):
        leftover.unlink()
    command.revision(alembic_config(ini, url=sqlite_url), message="skips the hook")
    assert list((scripts / "versions").glob("*_skips_the_hook.py"))
