"""Alembic migrations for a sqlmosaic host: one merged history for the enabled plugins.

``alembic/env.py`` is just ``from sqlmosaic.migrations import run_env; run_env()``. From async
code use the coroutine functions here (they hand Alembic a connection, no nested event loop);
from sync code, ``alembic.command.*`` on :func:`alembic_config`'s result.
"""

from __future__ import annotations

from ._adopt import adopt
from ._commands import (
    check,
    current,
    diffs,
    downgrade,
    drift_error,
    heads,
    orphans,
    revision,
    stamp,
    upgrade,
)
from ._config import alembic_config
from ._runtime import AppliedRevision, run_env

__all__ = [
    "AppliedRevision",
    "adopt",
    "alembic_config",
    "check",
    "current",
    "diffs",
    "downgrade",
    "drift_error",
    "heads",
    "orphans",
    "revision",
    "run_env",
    "stamp",
    "upgrade",
]
