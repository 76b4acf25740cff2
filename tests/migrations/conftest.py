"""Fixtures for the migration tests: real SQLite files and a real PostgreSQL server.

PostgreSQL: one throwaway server per session (``sqlmosaic.testing._pgserver``), a fresh database
per test. Scripts: each test that adds revisions works on a copy of the repository's ``alembic/``
directory and an ``alembic.ini`` next to it, so the real history is never touched.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sqlmosaic.testing._pgserver import PostgresServer, running_postgres

from .helpers import INI, REPO


@pytest.fixture(autouse=True)
def merged_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests exercise the host's merged history with accounts and tasks; the installed
    ``comments`` plugin (its own branch) is enabled only where a test asks for it with
    ``@pytest.mark.plugin_branches`` (tests/migrations/test_branches.py)."""
    if request.node.get_closest_marker("plugin_branches") is None:
        monkeypatch.setenv("MOSAIC_PLUGINS", "accounts,tasks")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "plugin_branches: run with every installed plugin (comments' own branch)"
    )
    # pytest-alembic's own tests carry this marker; its plugin registers it only when enabled.
    config.addinivalue_line("markers", "alembic: pytest-alembic's standard migration tests")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


def _admin(server: PostgresServer) -> psycopg.Connection[Any]:
    return psycopg.connect(server.url("postgres", driver=""), autocommit=True)


@pytest.fixture
def pg_database(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database; dropped afterwards."""
    name = f"mig_{uuid.uuid4().hex[:12]}"
    with _admin(pg_server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with _admin(pg_server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_server: PostgresServer, pg_database: str) -> str:
    return pg_server.url(pg_database)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'mosaic.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs on a SQLite file and on a PostgreSQL database."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    """A copy of alembic/ (env.py, script.py.mako, versions) with an alembic.ini beside it."""
    target = tmp_path / "project"
    target.mkdir()
    shutil.copytree(
        REPO / "alembic", target / "alembic", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(INI, target / "alembic.ini")
    return target / "alembic"


@pytest.fixture
def new_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """More empty databases of the backend of ``db_url`` (SQLite files or PostgreSQL), dropped
    afterwards."""
    made: list[str] = []
    server: PostgresServer | None = None
    if "postgresql" in request.getfixturevalue("db_url"):
        server = request.getfixturevalue("pg_server")

    def make() -> str:
        name = f"sq_{uuid.uuid4().hex[:12]}"
        if server is None:
            return f"sqlite+aiosqlite:///{tmp_path / (name + '.db')}"
        with psycopg.connect(server.url("postgres", driver=""), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return server.url(name)

    yield make
    if server is not None:
        with psycopg.connect(server.url("postgres", driver=""), autocommit=True) as conn:
            for name in made:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
