"""The migration checks as test items (``mosaic_migration_checks = true``).

pytest collects this module under ``mosaic_migration_checks_path`` (default
``tests/conftest.py``, whose fixtures, e.g. an overridden ``mosaic_migration_data``, apply).
The database checks run once per ``--mosaic-backends`` backend, each on a new empty database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from ._checks import (
    check_models_match,
    check_single_head,
    check_stairway,
    check_upgrade_from_empty,
)
from ._options import get_options
from ._template import alembic_config_for


def test_single_head_per_branch(request: pytest.FixtureRequest) -> None:
    options = get_options(request.config)
    check_single_head(alembic_config_for(options, "sqlite+aiosqlite:///:memory:"))


def test_upgrade_from_empty(
    request: pytest.FixtureRequest, mosaic_backend: str, mosaic_empty_url: str
) -> None:
    applied = check_upgrade_from_empty(
        alembic_config_for(get_options(request.config), mosaic_empty_url)
    )
    assert applied, "no revision was applied"


def test_models_match_migrations(
    request: pytest.FixtureRequest, mosaic_backend: str, mosaic_empty_url: str
) -> None:
    check_models_match(alembic_config_for(get_options(request.config), mosaic_empty_url))


def test_stairway(
    request: pytest.FixtureRequest,
    mosaic_backend: str,
    mosaic_empty_url: str,
    mosaic_migration_data: Mapping[str, Any],
) -> None:
    check_stairway(
        alembic_config_for(get_options(request.config), mosaic_empty_url), mosaic_migration_data
    )
