"""Test helpers: which statements an engine served from its compiled-statement cache, and what
a host's start logged about its warm-up (tests/core/test_warm_up*.py, tests/scaling)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine.interfaces import CacheStats
from sqlalchemy.ext.asyncio import AsyncEngine

from sqlmosaic import Mosaic


@contextmanager
def selects(engine: AsyncEngine) -> Iterator[list[tuple[str, CacheStats]]]:
    """Every SELECT the engine runs in the block, with whether its compiled form came from the
    engine's statement cache."""
    seen: list[tuple[str, CacheStats]] = []

    def record(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, context.cache_hit))

    event.listen(engine.sync_engine, "after_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "after_cursor_execute", record)


async def start_logged(host: Mosaic, caplog: pytest.LogCaptureFixture) -> list[str]:
    """Start ``host``; the messages its warm-up logged (every level)."""
    with caplog.at_level(logging.DEBUG, logger="sqlmosaic.host"):
        await host.start()
    return [r.getMessage() for r in caplog.records if "warm-up" in r.getMessage()]
