"""PostgreSQL: the server (pytest-postgresql), the migrated template, the per-session database.

Which server:

- ``--mosaic-pg-host``/``--mosaic-pg-port`` set: pytest-postgresql's ``postgresql_noproc`` against
  that server;
- nothing set, running as root: ``initdb``/``pg_ctl`` refuse to run as root, so a throwaway
  server is started by :func:`sqlmosaic.testing._pgserver.start_postgres` (as the ``postgres``
  OS user) and used through ``postgresql_noproc``; it is stopped at session end;
- nothing set, normal user: pytest-postgresql's ``postgresql_proc`` starts one.

On that server pytest-postgresql creates the template database ``mosaic_<pid>_tmpl`` (under
xdist the pid is per worker, and noproc adds the worker id), the host's Alembic migrations run
into it ONCE, and the session database ``mosaic_<pid>`` is cloned from it with
``CREATE DATABASE ... TEMPLATE``, as is every ``mosaic_fresh_url``.
"""

from __future__ import annotations

import atexit
import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

import pytest

from ._options import get_options, running_as_root
from ._template import count_build, migrate, seed_template

try:
    from pytest_postgresql import factories
    from pytest_postgresql.janitor import DatabaseJanitor
except ImportError:  # pragma: no cover - sqlmosaic[testing] not installed
    factories = None  # type: ignore[assignment]

__all__ = ["PgDatabase", "pg_clone", "pg_empty"]

_DBNAME = f"mosaic_{os.getpid()}"
_names = itertools.count(1)


class _Server(Protocol):
    """What both pytest-postgresql executors offer."""

    host: str
    port: int
    user: str
    password: str | None
    dbname: str

    @property
    def template_dbname(self) -> str: ...

    @property
    def maintenance_dbname(self) -> str: ...


@dataclass(frozen=True)
class PgEndpoint:
    """An existing server, in the shape ``postgresql_noproc(depends_on=...)`` reads."""

    host: str
    port: int
    user: str
    password: str | None
    options: str = ""
    maintenance_dbname: str = "postgres"
    template_dbname: str | None = None  # None: the noproc template is created from scratch


@dataclass(frozen=True)
class PgDatabase:
    """The server and the migrated template on it."""

    server: _Server
    template: str

    def url(self, dbname: str) -> str:
        from sqlalchemy.engine import URL

        return URL.create(
            "postgresql+asyncpg",
            username=self.server.user,
            password=self.server.password,
            host=self.server.host,
            port=int(self.server.port),
            database=dbname,
        ).render_as_string(hide_password=False)

    def janitor(self, dbname: str, template: str | None) -> DatabaseJanitor:
        return DatabaseJanitor(
            user=self.server.user,
            host=self.server.host,
            port=self.server.port,
            password=self.server.password,
            dbname=dbname,
            template_dbname=template,
            maintenance_dbname=self.server.maintenance_dbname,
        )


@contextmanager
def pg_clone(db: PgDatabase, dbname: str | None = None) -> Iterator[str]:
    """A new database cloned from the migrated template; dropped on exit. Yields its URL."""
    name = dbname or f"{db.server.dbname}_fresh_{next(_names)}"
    with db.janitor(name, db.template):
        yield db.url(name)


@contextmanager
def pg_empty(db: PgDatabase) -> Iterator[str]:
    """A new EMPTY database (no migrations); dropped on exit. Yields its URL."""
    name = f"{db.server.dbname}_empty_{next(_names)}"
    with db.janitor(name, None):
        yield db.url(name)


def _fail(message: str) -> NoReturn:
    pytest.fail(f"sqlmosaic: {message}", pytrace=False)


def _check_reachable(endpoint: PgEndpoint) -> None:
    import psycopg

    try:
        psycopg.connect(
            host=endpoint.host,
            port=endpoint.port,
            user=endpoint.user,
            password=endpoint.password,
            dbname=endpoint.maintenance_dbname,
            connect_timeout=10,
        ).close()
    except psycopg.Error as exc:
        _fail(
            f"cannot connect to the PostgreSQL server given by --mosaic-pg-host/--mosaic-pg-port "
            f"({endpoint.user}@{endpoint.host}:{endpoint.port}, database "
            f"{endpoint.maintenance_dbname!r}): {str(exc).strip()}"
        )


@pytest.fixture(scope="session")
def _mosaic_pg_endpoint(request: pytest.FixtureRequest) -> Iterator[PgEndpoint]:
    """The existing server (options) or, as root, a throwaway one run by the 'postgres' user."""
    options = get_options(request.config)
    if options.pg_configured:
        endpoint = PgEndpoint(
            host=options.pg_host or "127.0.0.1",
            port=options.pg_port or 5432,
            user=options.pg_user or "postgres",
            password=options.pg_password,
        )
        _check_reachable(endpoint)
        yield endpoint
        return
    from ._pgserver import PostgresStartError, start_postgres

    try:
        server = start_postgres()
    except PostgresStartError as exc:
        _fail(f"could not start a throwaway PostgreSQL server (running as root): {exc}")
    atexit.register(server.stop)  # idempotent; covers a session that never reaches teardown
    try:
        yield PgEndpoint(server.host, server.port, server.user, server.password)
    finally:
        server.stop()
        atexit.unregister(server.stop)


if factories is not None:
    _mosaic_postgresql_proc = factories.postgresql_proc(dbname=_DBNAME)
    _mosaic_postgresql_noproc = factories.postgresql_noproc(
        dbname=_DBNAME, depends_on="_mosaic_pg_endpoint"
    )


@pytest.fixture(scope="session")
def _mosaic_pg_server(request: pytest.FixtureRequest) -> Any:
    """The pytest-postgresql executor (proc or noproc) whose template database we fill."""
    if factories is None:
        _fail(
            "the PostgreSQL fixtures need pytest-postgresql: pip install 'sqlmosaic[testing]' "
            "(or run only SQLite: --mosaic-backends sqlite)"
        )
    if not request.config.pluginmanager.hasplugin("pytest_postgresql"):
        _fail(
            "the PostgreSQL fixtures need the pytest-postgresql plugin, which is disabled (-p no:)"
        )
    options = get_options(request.config)
    if options.pg_configured or running_as_root():
        return request.getfixturevalue("_mosaic_postgresql_noproc")
    return request.getfixturevalue("_mosaic_postgresql_proc")


@pytest.fixture(scope="session")
def _mosaic_pg_database(
    request: pytest.FixtureRequest, _mosaic_pg_server: Any, mosaic_seed: Any
) -> PgDatabase:
    """Run the host's migrations (then ``mosaic_seed``) ONCE into the template database."""
    server: _Server = _mosaic_pg_server
    db = PgDatabase(server, server.template_dbname)
    options = get_options(request.config)
    migrate(options, db.url(db.template))
    if mosaic_seed is not None:
        seed_template(options, db.url(db.template), mosaic_seed)
    count_build(request.config, "postgresql")
    return db


@pytest.fixture(scope="session")
def mosaic_pg_url(_mosaic_pg_database: PgDatabase) -> Iterator[str]:
    """Async URL (asyncpg) of this session's migrated PostgreSQL database (not parametrized)."""
    with pg_clone(_mosaic_pg_database, _mosaic_pg_database.server.dbname) as url:
        yield url
