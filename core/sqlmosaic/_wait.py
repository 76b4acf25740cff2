"""``wait_for_database``: block (asynchronously) until the database answers.

For containers that start before their database (docker compose, Kubernetes): run
``mosaic db wait`` (or ``await wait_for_database(settings)``) before migrating or serving,
instead of a hand-written retry loop.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ._exceptions import DatabaseUnavailableError
from ._settings import MosaicSettings
from ._url import mask_password

__all__ = ["wait_for_database"]

_log = logging.getLogger("sqlmosaic.wait")


async def wait_for_database(
    settings: MosaicSettings | None = None, *, max_wait: float = 60.0, interval: float = 1.0
) -> float:
    """Try ``SELECT 1`` every ``interval`` seconds until it succeeds; returns the seconds waited.

    Only "not reachable yet" is waited out (connection refused, DNS, timeouts, a server still
    starting up, see :class:`DatabaseUnavailableError`); any other error (a bad URL, a missing
    database, rejected credentials reported as such) is raised at once. After ``max_wait``
    seconds :class:`DatabaseUnavailableError` names the database (password masked) and the last
    reason.
    """
    from sqlalchemy import text
    from sqlalchemy.pool import NullPool

    from ._engine import create_engine
    from ._translate import is_refused, translate_error

    settings = settings if settings is not None else MosaicSettings.load()
    if max_wait < 0 or interval <= 0:
        raise ValueError("max_wait must be >= 0 and interval > 0")
    started = time.monotonic()
    deadline = started + max_wait
    engine = create_engine(settings, poolclass=NullPool)
    attempts = 0
    try:
        while True:
            attempts += 1
            try:
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
                return time.monotonic() - started
            except Exception as exc:
                error = translate_error(exc) or exc
                if not isinstance(error, DatabaseUnavailableError) or is_refused(exc):
                    raise error from exc
                reason = mask_password(str(exc).strip().splitlines()[0] if str(exc) else "")
                reason = reason or type(exc).__name__
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DatabaseUnavailableError(
                    f"{settings.masked_url} did not answer within {max_wait:g} s "
                    f"({attempts} attempt(s)); last error: {reason}"
                )
            _log.info("waiting for %s: %s", settings.masked_url, reason)
            await asyncio.sleep(min(interval, remaining))
    finally:
        await engine.dispose()
