"""pytest-alembic's standard tests against the repository's history, on a SQLite file.

pytest-alembic passes the engine in ``config.attributes["connection"]`` and calls each
command synchronously; the environment runs an ``AsyncEngine`` with ``asyncio.run`` (so the
engine uses ``NullPool``). The fixture is built with ``pytest_alembic.runner`` directly, so it
works whether or not the pytest-alembic plugin is enabled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import pytest_alembic
from pytest_alembic.config import Config as PytestAlembicConfig
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from .helpers import make_config

# The reference host as shipped: accounts and tasks in the merged history, comments on its own
# branch (pytest-alembic counts Alembic's "heads" target: comments' head implies the host's).
pytestmark = pytest.mark.plugin_branches

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture
def alembic_runner(sqlite_url: str) -> Iterator[pytest_alembic.MigrationContext]:
    engine = create_async_engine(sqlite_url, poolclass=NullPool)
    config = PytestAlembicConfig(alembic_config=make_config(sqlite_url))
    with pytest_alembic.runner(config=config, engine=engine) as runner:
        yield runner
    asyncio.run(engine.dispose())
