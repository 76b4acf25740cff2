"""Alembic migrations for a sqlmosaic host: the host's merged history for the enabled plugins,
plus a branch per plugin that ships its own history (``mosaic_migrations()``).

``alembic/env.py`` is just ``from sqlmosaic.migrations import run_env; run_env()``. From async
code use the coroutine functions here (they hand Alembic a connection, no nested event loop);
from sync code, ``alembic.command.*`` on :func:`alembic_config`'s result.
"""

from __future__ import annotations

from ._adopt import Adoption, adopt, adopt_foreign
from ._commands import (
    check,
    current,
    diffs,
    downgrade,
    drift_error,
    final_heads_of,
    heads,
    orphans,
    revision,
    stamp,
    upgrade,
)
from ._config import MosaicConfig, alembic_config, standalone_config
from ._runtime import AppliedRevision, run_env
from ._squash import squash

__all__ = [
    "Adoption",
    "AppliedRevision",
    "MosaicConfig",
    "adopt",
    "adopt_foreign",
    "alembic_config",
    "check",
    "current",
    "diffs",
    "downgrade",
    "drift_error",
    "final_heads_of",
    "heads",
    "orphans",
    "revision",
    "run_env",
    "squash",
    "stamp",
    "standalone_config",
    "upgrade",
]
