"""Testing support for sqlmosaic hosts and plugins.

- The pytest plugin (:mod:`sqlmosaic.testing.plugin`, loaded automatically when sqlmosaic is
  installed): fixtures giving each test a savepoint-isolated session on a database migrated once
  per session from the host's real Alembic migrations, on PostgreSQL and SQLite. See
  docs/testing.md.
- Migration checks for a project's own tests: :func:`check_single_head`,
  :func:`check_upgrade_from_empty`, :func:`check_models_match`, :func:`check_stairway`.
- :class:`SQLCounter` (what ``mosaic_sql_counter`` yields) and :func:`template_builds`.

Importing this package is cheap: the names above load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._checks import (
        MigrationData,
        check_models_match,
        check_single_head,
        check_stairway,
        check_upgrade_from_empty,
    )
    from ._options import MosaicTestOptions, get_options
    from ._sqlcount import SQLCounter, SQLCounterFactory
    from ._template import template_builds

__all__ = [
    "MigrationData",
    "MosaicTestOptions",
    "SQLCounter",
    "SQLCounterFactory",
    "check_models_match",
    "check_single_head",
    "check_stairway",
    "check_upgrade_from_empty",
    "get_options",
    "template_builds",
]

_WHERE = {
    "MigrationData": "_checks",
    "check_models_match": "_checks",
    "check_single_head": "_checks",
    "check_stairway": "_checks",
    "check_upgrade_from_empty": "_checks",
    "MosaicTestOptions": "_options",
    "get_options": "_options",
    "SQLCounter": "_sqlcount",
    "SQLCounterFactory": "_sqlcount",
    "template_builds": "_template",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
