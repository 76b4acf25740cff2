"""Fixtures of the scaling suite: a real PgBouncer (transaction pooling) in front of the test
PostgreSQL, and a private primary with a streaming replica.

PgBouncer is Debian's package (``.ci/run`` installs it). Where it is missing the tests FAIL in
CI (``CI`` set) and are skipped with the reason outside CI: never silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from sqlmosaic.testing._pgbouncer import (
    PgBouncer,
    PgBouncerStartError,
    find_pgbouncer,
    start_pgbouncer,
)


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
