"""HTTP mapping of sqlmosaic errors, shared by every web integration (framework-free).

=========================== ====== ==========================================================
error                       status body (``error`` plus ...)
=========================== ====== ==========================================================
NotFoundError               404    ``detail``, ``model``
ConflictError               409    ``detail``, ``kind``, ``constraint``, ``table``, ``columns``
InvalidQueryError           400    ``detail``, ``field`` (the parameter or field at fault)
DatabaseUnavailableError    503    a fixed ``detail``; header ``Retry-After``
CommitOutcomeUnknownError   500    ``error: commit_outcome_unknown``, a fixed ``detail``; NO
                                   ``Retry-After`` (the write may have been applied: retry
                                   only with the same idempotency key)
any other MosaicError       500    a fixed ``detail``: nothing about the cause leaks
=========================== ====== ==========================================================

The messages of the first three are built by sqlmosaic from structured facts (model, key,
constraint name, field name) and never contain bound values or URLs, so they are safe to return.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import (
    CommitOutcomeUnknownError,
    ConflictError,
    DatabaseUnavailableError,
    InvalidQueryError,
    MosaicError,
    NotFoundError,
)
from .._translate import describe, is_refused
from .._url import mask_password

__all__ = ["DEFAULT_RETRY_AFTER", "ErrorBody", "ErrorResponse", "error_response"]

#: Seconds a client is told to wait after a 503.
DEFAULT_RETRY_AFTER = 5

_log = logging.getLogger("sqlmosaic.integrations")


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """Status, JSON body and headers for one error."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


#: ``body(exc, response) -> dict``: a host's own shape for the JSON body of an error response
#: (``install_exception_handlers(app, body=...)``); status and headers are kept.
ErrorBody = Callable[[MosaicError, ErrorResponse], dict[str, Any]]


def error_response(
    exc: MosaicError, *, retry_after: int = DEFAULT_RETRY_AFTER, where: str = ""
) -> ErrorResponse:
    """The HTTP response for ``exc``; unexpected errors are logged (with ``where``)."""
    if isinstance(exc, NotFoundError):
        return ErrorResponse(404, {"error": "not_found", "detail": str(exc), "model": exc.model})
    if isinstance(exc, ConflictError):
        return ErrorResponse(
            409,
            {
                "error": "conflict",
                "detail": str(exc),
                "kind": exc.kind,
                "constraint": exc.constraint,
                "table": exc.table,
                "columns": list(exc.columns),
            },
        )
    if isinstance(exc, InvalidQueryError):
        return ErrorResponse(
            400, {"error": "invalid_query", "detail": str(exc), "field": exc.field}
        )
    if isinstance(exc, DatabaseUnavailableError):
        # a refused connection (credentials, database name) was logged once by the engine, with
        # the masked URL: not again for every request it fails
        refused = exc.__cause__ is not None and is_refused(exc.__cause__)
        _log.log(
            logging.DEBUG if refused else logging.WARNING,
            "database unavailable%s: %s",
            where,
            mask_password(str(exc)),
        )
        return ErrorResponse(
            503,
            {
                "error": "database_unavailable",
                "detail": "the database is temporarily unavailable; retry later",
            },
            {"Retry-After": str(retry_after)},
        )
    if isinstance(exc, CommitOutcomeUnknownError):
        _log.error("commit outcome unknown%s: %s", where, exc)
        return ErrorResponse(
            500,
            {
                "error": "commit_outcome_unknown",
                "detail": "the change may or may not have been saved; retry only with the "
                "same Idempotency-Key",
            },
        )
    # Not exc_info: a traceback prints the __cause__ chain, and the driver's text there can
    # carry bound values ("invalid input for query argument $1: '...'"). Log our own frames and
    # value-free facts about the cause instead.
    cause = describe(exc.__cause__) if exc.__cause__ is not None else None
    _log.error(
        "unhandled %s%s: %s (cause: %s)\n%s",
        type(exc).__name__,
        where,
        mask_password(str(exc)),
        cause,
        "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
    )
    return ErrorResponse(500, {"error": "internal_error", "detail": "internal server error"})
