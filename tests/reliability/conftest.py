"""Fixtures of the reliability suite: a fault-injecting proxy in front of the test PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import make_url

from .proxy import PgProxy, pg_proxy


@pytest.fixture
async def proxy(mosaic_fresh_url: str) -> AsyncIterator[PgProxy]:
    """A :class:`PgProxy` in front of this test's fresh PostgreSQL database."""
    url = make_url(mosaic_fresh_url)
    assert url.host is not None
    assert url.port is not None
    async with pg_proxy(url.host, url.port) as running:
        yield running


@pytest.fixture
def proxied_url(mosaic_fresh_url: str, proxy: PgProxy) -> str:
    """``mosaic_fresh_url`` through the proxy."""
    url = make_url(mosaic_fresh_url).set(host="127.0.0.1", port=proxy.port)
    return url.render_as_string(hide_password=False)
