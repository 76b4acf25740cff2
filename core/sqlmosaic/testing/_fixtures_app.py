"""Testing an app: ``mosaic_client`` over the project's ``mosaic_app``; ``mosaic_seed``.

``mosaic_client`` is an ``httpx.AsyncClient`` on ``httpx.ASGITransport`` (in process, on the
test's own event loop) with the app's lifespan run around it by asgi-lifespan's
``LifespanManager`` (httpx sends no lifespan events). The app comes from a fixture the project
defines, typically ``create_app(mosaic_host)``: every request then runs on the test's
isolated, rolled-back database.

Starlette's ``TestClient`` cannot do this: it runs the app on its own event loop in a thread,
and an asyncpg connection belongs to the loop that opened it (the test's), so the first query
fails with "attached to a different loop".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

if TYPE_CHECKING:
    import httpx

    from .._host import Mosaic

__all__ = ["SeedFunction"]

#: ``async def seed(mosaic: Mosaic) -> None``: what a ``mosaic_seed`` fixture returns.
SeedFunction = Callable[["Mosaic"], Awaitable[None]]

#: Seconds the app's lifespan startup/shutdown may take before the fixture gives up (a hung
#: startup must not hang the run; generous, as it is only a guard).
LIFESPAN_TIMEOUT = 120.0


@pytest.fixture
def mosaic_app() -> Any:
    """Override in your conftest.py: return the ASGI app under test, built on ``mosaic_host``."""
    pytest.fail(
        "sqlmosaic: mosaic_client needs the app under test. Define a fixture in conftest.py:\n\n"
        "    @pytest.fixture\n"
        "    def mosaic_app(mosaic_host):\n"
        "        return create_app(mosaic_host)\n",
        pytrace=False,
    )


@pytest_asyncio.fixture(loop_scope="session")
async def mosaic_client(mosaic_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx.AsyncClient talking to ``mosaic_app`` in process, inside the app's lifespan."""
    try:
        import httpx
        from asgi_lifespan import LifespanManager
    except ImportError as exc:  # pragma: no cover - sqlmosaic[testing] not installed
        pytest.fail(
            f"sqlmosaic: mosaic_client needs httpx and asgi-lifespan ({exc}): "
            "pip install 'sqlmosaic[testing]'",
            pytrace=False,
        )
    async with LifespanManager(
        mosaic_app, startup_timeout=LIFESPAN_TIMEOUT, shutdown_timeout=LIFESPAN_TIMEOUT
    ) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", trust_env=False
        ) as client:
            yield client


@pytest.fixture(scope="session")
def mosaic_seed() -> SeedFunction | None:
    """Override (session scope) to commit data into the migrated template ONCE per run.

    Return ``async def seed(mosaic): ...``; it runs on a started host over the template right
    after the migrations, and what it commits is in every test's database (and every
    ``mosaic_fresh_url``), restored by each test's rollback. ``None``: nothing to seed.
    """
    return None
