"""``mosaic db ...`` through typer's CliRunner, plus the installed scripts in a subprocess.

The PostgreSQL URL carries a password with ``%``, ``@``, ``:`` and ``/`` in it: no output may
show it, raw or URL-encoded.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from click.testing import Result
from typer.testing import CliRunner

from sqlmosaic.cli import build_app
from sqlmosaic.testing._pgserver import PostgresServer

from .helpers import (
    FAILING,
    FIRST,
    HEAD,
    INI,
    NICKNAME,
    SHIPPED,
    add_revision,
    create_all,
    execute,
)

PASSWORD = "p%40ss@w:rd/%"
SECRETS = (PASSWORD, quote(PASSWORD, safe=""), "w:rd", "ss@w")
VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def pg_password_url(pg_server: PostgresServer, pg_database: str) -> Iterator[str]:
    """The test database, owned by a role whose password needs escaping everywhere."""
    role = f"owner_{uuid.uuid4().hex[:8]}"
    admin = pg_server.url("postgres", driver="")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
        conn.execute(f'ALTER DATABASE "{pg_database}" OWNER TO {role}')
    yield (
        f"postgresql+asyncpg://{role}:{quote(PASSWORD, safe='')}@{pg_server.host}:"
        f"{pg_server.port}/{pg_database}"
    )
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{pg_database}" WITH (FORCE)')
        conn.execute(f"DROP ROLE IF EXISTS {role}")


@pytest.fixture(params=["sqlite", "postgresql"])
def cli_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(
        "sqlite_url" if request.param == "sqlite" else "pg_password_url"
    )
    return url


def run(*args: str, url: str | None, ini: Path = INI, env: dict[str, str] | None = None) -> Result:
    argv = ["db", *args, "--config", str(ini)]
    if url is not None:
        argv += ["--database-url", url]
    result = CliRunner().invoke(build_app(), argv, env={"COLUMNS": "250", **(env or {})})
    for secret in SECRETS:
        assert secret not in result.stdout, result.stdout
        assert secret not in result.stderr, result.stderr
    return result


def flat(text: str) -> str:
    return " ".join(text.split())


def test_db_commands_end_to_end(cli_url: str) -> None:
    masked = re.sub(r":[^:@/]+@", ":***@", cli_url, count=1)

    result = run("upgrade", url=cli_url)
    assert result.exit_code == 0, result.output
    assert f"Upgrade {masked} from base to heads" in result.stdout
    assert re.search(
        rf"✓ applied {FIRST}  create accounts and tasks tables \(\d+ ms\)", result.stdout
    )
    assert re.search(rf"✓ applied {HEAD}  add idempotency key to task \(\d+ ms\)", result.stdout)
    assert f"Done: {len(SHIPPED)} revision(s) applied in" in result.stdout

    assert run("upgrade", url=cli_url).stdout.splitlines()[-1] == (
        f"Nothing to do: the database is at {HEAD}."
    )
    current = run("current", url=cli_url)
    assert current.stdout.splitlines() == [f"Database: {masked}", f"  {HEAD} (head)"]

    check = run("check", url=cli_url)
    assert check.exit_code == 0, check.output
    assert f"OK: the models match the migrations ({masked})." in check.stdout

    history = run("history", url=cli_url)
    assert history.stdout.strip().splitlines() == [
        f"{FIRST} -> {HEAD} (head), add idempotency key to task",
        f"<base> -> {FIRST}, create accounts and tasks tables",
    ]
    assert run("heads", url=cli_url).stdout.strip() == f"{HEAD} (head)"

    sql = run("sql", url=cli_url)
    assert sql.exit_code == 0, sql.output
    assert "CREATE TABLE" in sql.stdout
    assert "CREATE UNIQUE INDEX ix_user_email" in sql.stdout
    assert ("SET LOCAL lock_timeout = '5000ms';" in sql.stdout) == ("postgresql" in cli_url)
    down_sql = run("sql", "head:base", "--downgrade", url=cli_url)
    assert "DROP TABLE task;" in down_sql.stdout

    stamp = run("stamp", "base", url=cli_url)
    assert stamp.stdout.strip() == f"Stamped {masked} at base."
    adopt = run("adopt", url=cli_url)  # the schema is there and matches: adopt re-stamps it
    assert adopt.exit_code == 0, adopt.output
    assert f"Adopted: {masked} matches the models; stamped at {HEAD}." in adopt.stdout

    down = run("downgrade", "base", url=cli_url)
    assert down.exit_code == 0, down.output
    assert f"✓ reverted {HEAD}" in down.stdout
    assert f"✓ reverted {FIRST}" in down.stdout
    assert "the database is at base." in down.stdout


def test_check_fails_with_the_list_of_differences(sqlite_url: str, scripts: Path) -> None:
    add_revision(scripts, "r2_nickname", NICKNAME)
    ini = scripts.parent / "alembic.ini"
    assert run("upgrade", url=sqlite_url, ini=ini).exit_code == 0
    result = run("check", url=sqlite_url, ini=ini)
    assert result.exit_code == 1
    assert "Drift:" in result.stdout
    assert "- remove_column: column user.nickname VARCHAR(50) (in the database only)" in (
        result.stdout
    )
    assert "mosaic db revision --autogenerate" in result.stdout


def test_orphans_are_reported_never_dropped_and_strict_fails(db_url: str, scripts: Path) -> None:
    ini = scripts.parent / "alembic.ini"
    assert run("upgrade", url=db_url, ini=ini).exit_code == 0
    accounts_only = {"MOSAIC_PLUGINS": "accounts"}
    result = run("check", url=db_url, ini=ini, env=accounts_only)
    assert result.exit_code == 0, result.output
    out = flat(result.stdout)
    assert (
        "Orphan tables (owned by no enabled plugin; not compared, never dropped): project, task"
        in out
    )
    assert "installed but not enabled: comments (not in allowlist), tasks (not in allowlist)" in out
    assert run("check", "--strict", url=db_url, ini=ini, env=accounts_only).exit_code == 1

    versions = set((scripts / "versions").iterdir())
    written = run(
        "revision", "-m", "drop nothing", "--autogenerate", url=db_url, ini=ini, env=accounts_only
    )
    assert written.exit_code == 0, written.output
    assert "nothing written" in written.stdout
    assert set((scripts / "versions").iterdir()) == versions


def test_revision_file_is_named_and_formatted(sqlite_url: str, scripts: Path) -> None:
    ini = scripts.parent / "alembic.ini"
    result = run("revision", "-m", "add due date to task", url=sqlite_url, ini=ini)
    assert result.exit_code == 0, result.output
    created = [
        p for p in (scripts / "versions").glob("*.py") if not any(r in p.name for r in SHIPPED)
    ]
    assert len(created) == 1
    name = created[0].name
    assert re.fullmatch(r"\d{4}_\d\d_\d\d_\d{4}-[0-9a-f]{12}_add_due_date_to_task\.py", name)
    assert name in flat(result.stdout)
    source = created[0].read_text()
    assert "import sqlmodel" in source
    assert f'down_revision: str | Sequence[str] | None = "{HEAD}"' in source
    ruff = [str(VENV_BIN / "ruff"), "--config", str(INI.parent / "pyproject.toml")]
    for args in (["format", "--check"], ["check"]):
        done = subprocess.run([*ruff, *args, str(created[0])], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    assert run("upgrade", url=sqlite_url, ini=ini).exit_code == 0  # an empty revision runs


def test_empty_message_is_refused(sqlite_url: str) -> None:
    result = run("revision", "-m", "  ", url=sqlite_url)
    assert result.exit_code == 1
    assert "the revision message is empty" in result.stderr


def test_failing_revision_exits_1_naming_it(cli_url: str, scripts: Path) -> None:
    add_revision(scripts, "r2_nickname", NICKNAME)
    add_revision(scripts, "r3_failing", FAILING)
    ini = scripts.parent / "alembic.ini"
    result = run("upgrade", url=cli_url, ini=ini)
    assert result.exit_code == 1
    err = flat(result.stderr)
    assert "error: upgrade of revision r3failing ('add note table then fail') failed" in err
    assert "the whole run was rolled back; the database is still at base" in err
    assert "base (no revision applied" in run("current", url=cli_url, ini=ini).stdout


def test_unknown_revision_and_unreachable_database_are_one_line_errors(sqlite_url: str) -> None:
    unknown = run("downgrade", "nope", url=sqlite_url)
    assert unknown.exit_code == 1
    assert "error: Can't locate revision identified by 'nope'" in flat(unknown.stderr)
    url = f"postgresql+asyncpg://someone:{quote(PASSWORD, safe='')}@127.0.0.1:1/db"
    down = run("current", url=url)
    assert down.exit_code == 1
    assert "error: cannot connect to postgresql+asyncpg://someone:***@127.0.0.1:1/db" in flat(
        down.stderr
    )


def test_adopt_refuses_a_differing_schema(db_url: str) -> None:
    asyncio.run(create_all(db_url))
    asyncio.run(execute(db_url, 'ALTER TABLE "user" ADD COLUMN legacy_flag INTEGER'))
    result = run("adopt", url=db_url)
    assert result.exit_code == 1
    err = flat(result.stderr)
    assert "refusing to adopt: the database differs from the models in 1 way(s)" in err
    assert "- remove_column: column user.legacy_flag INTEGER (in the database only)" in err
    assert "base (no revision applied" in run("current", url=db_url).stdout


@pytest.mark.postgres
def test_installed_scripts_read_the_url_from_the_environment(pg_password_url: str) -> None:
    """``alembic`` and ``mosaic`` as a user runs them: DATABASE_URL with ``%`` in the password
    (alembic.ini has no URL, so configparser interpolation never sees it)."""
    env = {k: v for k, v in os.environ.items() if k != "MOSAIC_DATABASE_URL"}
    env["DATABASE_URL"] = pg_password_url
    alembic = subprocess.run(
        [str(VENV_BIN / "alembic"), "-c", str(INI), "upgrade", "head"],
        capture_output=True,
        text=True,
        env=env,
        cwd=INI.parent,
        timeout=120,
    )
    assert alembic.returncode == 0, alembic.stderr
    assert f"Running upgrade  -> {FIRST}" in alembic.stderr
    assert f"Running upgrade {FIRST} -> {HEAD}" in alembic.stderr
    mosaic = subprocess.run(
        [str(VENV_BIN / "mosaic"), "db", "current", "--config", str(INI)],
        capture_output=True,
        text=True,
        env=env,
        cwd=INI.parent,
        timeout=120,
    )
    assert mosaic.returncode == 0, mosaic.stderr
    assert f"{HEAD} (head)" in mosaic.stdout
    assert ":***@" in mosaic.stdout
    for secret in SECRETS:
        assert secret not in alembic.stdout + alembic.stderr + mosaic.stdout + mosaic.stderr
