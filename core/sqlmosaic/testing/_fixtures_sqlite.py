"""SQLite: migrate once into a template file per session (per xdist worker), copy it per database.

Files live under pytest's per-session (per-worker) temporary directory, so workers never share one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ._options import get_options
from ._template import (
    copy_sqlite,
    count_build,
    migrate,
    remove_sqlite,
    seal_sqlite,
    seed_template,
    sqlite_url,
)

__all__ = ["sqlite_clone", "sqlite_empty"]

_names = itertools.count(1)


@contextmanager
def sqlite_clone(template: Path, name: str | None = None) -> Iterator[str]:
    """A copy of the migrated template file; removed on exit. Yields its URL."""
    target = template.with_name(name or f"fresh-{next(_names)}.db")
    copy_sqlite(template, target)
    try:
        yield sqlite_url(target)
    finally:
        remove_sqlite(target)


@contextmanager
def sqlite_empty(directory: Path) -> Iterator[str]:
    """The URL of a database file in ``directory`` that does not exist yet; removed on exit."""
    target = directory / f"empty-{next(_names)}.db"
    remove_sqlite(target)
    try:
        yield sqlite_url(target)
    finally:
        remove_sqlite(target)


@pytest.fixture(scope="session")
def _mosaic_sqlite_template(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, mosaic_seed: Any
) -> Path:
    """Run the host's migrations (then ``mosaic_seed``) ONCE into ``template.db``."""
    path = tmp_path_factory.mktemp("mosaic-sqlite") / "template.db"
    options = get_options(request.config)
    migrate(options, sqlite_url(path))
    if mosaic_seed is not None:
        seed_template(options, sqlite_url(path), mosaic_seed)
    seal_sqlite(path)
    count_build(request.config, "sqlite")
    return path


@pytest.fixture(scope="session")
def mosaic_sqlite_url(_mosaic_sqlite_template: Path) -> Iterator[str]:
    """Async URL (aiosqlite) of this session's migrated SQLite database (not parametrized)."""
    with sqlite_clone(_mosaic_sqlite_template, "mosaic.db") as url:
        yield url
