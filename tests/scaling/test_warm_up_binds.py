"""The start's warm-up with per-plugin binds (``MOSAIC_BINDS``), on both backends: each model
is read on its own bind, and whether its table exists is asked of that bind's database.
(Without the mapper in ``session.connection(bind_arguments=...)`` both cases fail.)"""

from __future__ import annotations

import pytest
from cache_hits import selects, start_logged
from sqlalchemy import text
from sqlalchemy.engine.interfaces import CacheStats

from sqlmosaic import create_engine, transaction

from .test_binds import bound_settings, migrate_binds, new_host


async def test_a_bound_model_is_warmed_on_its_bind(
    mosaic_fresh_url: str, mosaic_empty_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``memo`` exists only in the bind's database: it is warmed there, and a request's first
    read of it on that engine is a cache hit."""
    await migrate_binds(mosaic_fresh_url, mosaic_empty_url)
    host = new_host(mosaic_fresh_url, mosaic_empty_url)
    host.settings = host.settings.model_copy(update={"warm_up": True})
    messages = await start_logged(host, caplog)
    try:
        assert messages == [
            f"warm-up on the primary: {len(host.plugins.repositories)} repositories"
        ]
        (bind_engine,) = host.database.bind_engines
        with selects(bind_engine) as seen:
            async with host.database.session() as session, transaction(session):
                await host.repository("memos.memos", session).get_or_none(1)
        assert [hit for _, hit in seen] == [CacheStats.CACHE_HIT]
    finally:
        await host.stop()


async def test_the_table_check_asks_the_bind_not_the_primary(
    mosaic_fresh_url: str, mosaic_empty_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The bind's database is empty (its branch not applied) but the PRIMARY has a ``memo``
    table: the bound repository is skipped, with no warning."""
    engine = create_engine(bound_settings(mosaic_fresh_url, mosaic_empty_url))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("CREATE TABLE memo (id INTEGER PRIMARY KEY, author_email TEXT, body TEXT)")
            )
    finally:
        await engine.dispose()
    host = new_host(mosaic_fresh_url, mosaic_empty_url)
    host.settings = host.settings.model_copy(update={"warm_up": True})
    messages = await start_logged(host, caplog)
    try:
        assert messages == [
            f"warm-up on the primary: {len(host.plugins.repositories) - 1} repositories"
        ]
    finally:
        await host.stop()
