"""Project-wide test configuration.

The database fixtures (``mosaic_session``, ``mosaic_host``, ...) come from sqlmosaic's own pytest
plugin, ``sqlmosaic.testing.plugin``, which pytest loads through its entry point; see
docs/testing.md. This file only adds what is specific to this repository.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

pytest_plugins = ("pytester",)

_T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def refused_port() -> Iterator[Callable[[], int]]:
    """Hands out loopback TCP ports that refuse connections, for "the server is down" tests.

    Each port stays bound by a socket of this process that never listens, until the session
    ends: a connection is refused at once, and no other process (another test run, a server
    started meanwhile) can take the port in between. A port found free and released again
    could be anyone's by the time the test connects to it.
    """
    held: list[socket.socket] = []

    def take() -> int:
        sock = socket.socket()
        held.append(sock)
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

    yield take
    for sock in held:
        sock.close()


@pytest.fixture
def mosaic_migration_data() -> Mapping[str, Any]:
    """Rows the stairway migration check inserts after each revision of alembic/versions."""
    return {
        "eab1d300f7dd": {
            "user": [
                {
                    "id": 1,
                    "email": "a@example.com",
                    "name": "A",
                    "is_active": True,
                    "created_at": _T0,
                },
            ],
            "team": [{"id": 1, "name": "core", "created_at": _T0}],
            "membership": [{"team_id": 1, "user_id": 1, "role": "owner"}],
            "project": [{"id": 1, "name": "p", "description": "", "created_at": _T0}],
            "task": [
                {
                    "id": 1,
                    "project_id": 1,
                    "title": "t",
                    "status": "open",
                    "priority": 0,
                    "assignee_id": 1,
                    "created_at": _T0,
                },
            ],
        },
    }
