"""A server that refuses the connection (wrong password, no such role or database) is logged once.

A refusal (SQLSTATE class 28, 3D000) is the host's configuration, not the request: every
request then fails the same way with :class:`DatabaseUnavailableError` (HTTP 503). The operator
needs one clear line naming the database, not one per request: the engine's first refused
connect attempt is logged at ERROR with the masked URL (never the password) and the SQLSTATE;
later refusals are logged at DEBUG, until a connect attempt succeeds (a later refusal, say
after a password rotation, is then logged again). The web integrations do not log refusals
again (see ``integrations._errors``).

The check wraps this engine's ``Dialect.connect`` (an instance attribute; no event listener,
which would switch on SQLAlchemy's per-statement event dispatch): it costs nothing per
statement, only per new connection.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ._translate import is_refused, sqlstate_of

__all__ = ["install_refusal_log"]

_log = logging.getLogger("sqlmosaic.database")


def install_refusal_log(engine: AsyncEngine, *, masked_url: str) -> None:
    """Log ``engine``'s refused connect attempts once per streak (see the module docstring)."""
    dialect = engine.sync_engine.dialect
    connect = dialect.connect
    streak = [False]  # a refusal was logged and no connect attempt has succeeded since

    def connect_and_report_refusal(*cargs: Any, **cparams: Any) -> Any:
        try:
            connection = connect(*cargs, **cparams)
        except Exception as exc:
            if is_refused(exc):
                level = logging.DEBUG if streak[0] else logging.ERROR
                streak[0] = True
                _log.log(
                    level,
                    "the database %s refused the connection (SQLSTATE %s): check the "
                    "credentials and the database name in DATABASE_URL",
                    masked_url,
                    sqlstate_of(exc),
                )
            raise
        streak[0] = False
        return connection

    dialect.connect = connect_and_report_refusal  # type: ignore[method-assign]
