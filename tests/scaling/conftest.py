"""Fixtures of the scaling suite: a real PgBouncer (transaction pooling) in front of the test
PostgreSQL, and a private primary with a streaming replica.

PgBouncer is Debian's package (``.ci/run`` installs it). Where it is missing the tests FAIL in
CI (``CI`` set) and are skipped with the reason outside CI: never silently.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from sqlmosaic.testing._pgbouncer import (
    PgBouncer,
    PgBouncerStartError,
    find_pgbouncer,
    start_pgbouncer,
)
from sqlmosaic.testing._pgserver import PostgresServer, PostgresStartError, start_postgres
from sqlmosaic.testing._replication import Replica, start_replica


def missing(what: str) -> None:
    """Fail in CI, skip with the reason elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI installs it: .ci/run)", pytrace=False)
    pytest.skip(f"{what}; install it to run these tests (CI does)")


@pytest.fixture(scope="session")
def pgbouncer(mosaic_pg_url: str) -> Iterator[PgBouncer]:
    """PgBouncer 1.18, pool_mode=transaction, 2 server connections, in front of the test server."""
    if find_pgbouncer() is None:
        missing("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    url = make_url(mosaic_pg_url)
    assert url.host is not None
    assert url.port is not None
    try:
        bouncer = start_pgbouncer(url.host, url.port)
    except PgBouncerStartError as exc:
        pytest.fail(f"could not start pgbouncer: {exc}", pytrace=False)
    try:
        yield bouncer
    finally:
        bouncer.stop()


def through(bouncer: PgBouncer, url: str) -> str:
    """``url`` (a database on the test server) reached through ``bouncer``."""
    return (
        make_url(url)
        .set(host=bouncer.host, port=bouncer.port)
        .render_as_string(hide_password=False)
    )


REPO = Path(__file__).resolve().parents[2]
APP_DB = "app"


@dataclass
class Cluster:
    """A private primary (migrated database ``app``) and two streaming replicas of it."""

    primary: PostgresServer
    replicas: list[Replica]

    @property
    def primary_url(self) -> str:
        return self.primary.url(APP_DB)

    def replica_urls(self) -> list[str]:
        return [replica.url(APP_DB) for replica in self.replicas]


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """Started once per test session: a PRIVATE primary (not the shared test server, whose
    databases come and go) migrated with the host's history, then two ``pg_basebackup -R``
    replicas on free ports."""
    try:
        primary = start_postgres()
    except PostgresStartError as exc:
        pytest.fail(f"could not start the primary: {exc}", pytrace=False)
    replicas: list[Replica] = []
    try:
        with psycopg.connect(primary.url("postgres", driver=""), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{APP_DB}"')
        proc = subprocess.run(
            [
                str(Path(sys.executable).parent / "mosaic"),
                "db",
                "upgrade",
                "--database-url",
                primary.url(APP_DB),
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for _ in range(2):
            replicas.append(start_replica(primary))
        yield Cluster(primary, replicas)
    finally:
        for replica in replicas:
            replica.remove()
        primary.stop()
