"""Migrate once into a template database; clone it cheaply.

Migrations run Alembic (``sqlmosaic.migrations``) on a private event loop in a worker thread: the
pytest-asyncio loop is neither blocked (no slow-callback reports for the fixture) nor nested.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from ._options import MosaicTestOptions

if TYPE_CHECKING:
    from alembic.config import Config

    from .._settings import MosaicSettings

__all__ = [
    "BUILDS_KEY",
    "alembic_config_for",
    "copy_sqlite",
    "count_build",
    "migrate",
    "remove_sqlite",
    "run_in_thread",
    "seed_template",
    "settings_for",
    "sqlite_url",
    "template_builds",
]

T = TypeVar("T")

#: ``config.stash[BUILDS_KEY]``: how many times each backend's template was migrated.
BUILDS_KEY = pytest.StashKey[dict[str, int]]()


def template_builds(config: pytest.Config) -> dict[str, int]:
    """Template databases built (migrated) so far in this pytest process, per backend."""
    builds: dict[str, int] = config.stash.get(BUILDS_KEY, {})
    return dict(builds)


def count_build(config: pytest.Config, backend: str) -> None:
    builds = config.stash.setdefault(BUILDS_KEY, {})
    builds[backend] = builds.get(backend, 0) + 1


def run_in_thread(fn: Callable[[], Awaitable[T]]) -> T:
    """Run the coroutine ``fn()`` to completion on a fresh event loop in a worker thread."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlmosaic-testing") as pool:
        return pool.submit(lambda: asyncio.run(_as_coroutine(fn))).result()


async def _as_coroutine(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()


def settings_for(options: MosaicTestOptions, url: str) -> MosaicSettings:
    """Settings of the host under test (environment + these options) pointed at ``url``."""
    from .._settings import MosaicSettings

    return MosaicSettings.load(**{**options.settings_overrides(), "database_url": url})


def alembic_config_for(options: MosaicTestOptions, url: str, **attributes: Any) -> Config:
    """The host's Alembic config (``--mosaic-alembic-ini``) pointed at ``url``; with no host
    (a plugin's own repository), the enabled plugins' shipped histories alone."""
    from ..migrations import alembic_config, standalone_config
    from ..migrations._branches import history_dirs
    from ..migrations._setup import resolve_plugins

    ini = options.alembic_ini
    if options.alembic_ini_given and not ini.is_file():
        raise pytest.UsageError(
            f"sqlmosaic: Alembic configuration {str(ini)!r} not found; the test databases are "
            "built by running the host's migrations: pass --mosaic-alembic-ini "
            "(ini mosaic_alembic_ini, env MOSAIC_TEST_ALEMBIC_INI)"
        )
    if ini.is_file():
        config = alembic_config(ini, settings=settings_for(options, url))
    else:
        config = standalone_config(settings=settings_for(options, url))
        if not history_dirs(resolve_plugins(config)):
            raise pytest.UsageError(
                f"sqlmosaic: Alembic configuration {str(ini)!r} not found and no enabled plugin "
                "ships its own migrations (mosaic_migrations()); the test databases are built "
                "by running migrations: pass --mosaic-alembic-ini (ini mosaic_alembic_ini, env "
                "MOSAIC_TEST_ALEMBIC_INI)"
            )
    config.attributes.update(attributes)
    return config


def migrate(options: MosaicTestOptions, url: str, revision: str = "heads") -> float:
    """Upgrade the database at ``url`` to ``revision``; returns the seconds it took."""
    from ..migrations import upgrade

    config = alembic_config_for(options, url)
    started = time.perf_counter()

    async def run() -> None:
        await upgrade(config, revision)

    run_in_thread(run)
    return time.perf_counter() - started


def seed_template(
    options: MosaicTestOptions, url: str, seed: Callable[[Any], Awaitable[None]]
) -> None:
    """Run the project's ``mosaic_seed`` function on a host started over the template at
    ``url`` (a private loop in a worker thread); the host is stopped, so the template is free
    to be cloned afterwards."""
    from .._host import Mosaic

    async def run() -> None:
        host = Mosaic(settings_for(options, url))
        await host.start()
        try:
            await seed(host)
        finally:
            await host.stop()

    run_in_thread(run)


# ------------------------------------------------------------------------------ SQLite


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def seal_sqlite(path: Path) -> None:
    """Fold any WAL into the main file, so that copying the one file copies the database."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()


def copy_sqlite(template: Path, target: Path) -> Path:
    remove_sqlite(target)
    shutil.copyfile(template, target)
    return target


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
