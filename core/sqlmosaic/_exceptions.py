"""Every error sqlmosaic raises, under one root.

The hierarchy::

    MosaicError
    ├── ConfigurationError            invalid settings (names the setting; passwords masked)
    │   └── PgBouncerSettingError     a prepared statement missing on the server connection:
    │                                 behind PgBouncer's transaction pooling, set MOSAIC_PGBOUNCER
    ├── PluginError                   names the plugin(s) at fault; raised at startup
    │   ├── PluginImportError         the plugin's entry point or module failed to import
    │   ├── PluginHookError           a hook implementation has the wrong signature or return value
    │   ├── PluginDependencyError     a required plugin is missing, disabled or blocked
    │   ├── PluginCycleError          the ``mosaic_requires`` graph has a cycle (printed)
    │   ├── DuplicateTableError       two plugins define the same table
    │   ├── DuplicateRepositoryError  two repositories for the same model or key
    │   └── ForeignKeyScopeError      a foreign key into a plugin that is not required / enabled
    │       └── CrossBindForeignKeyError  ... or into a table on another bind (MOSAIC_BINDS)
    ├── RepositoryError               raised by repositories and units of work
    │   ├── NotFoundError             no row for the given key
    │   ├── ConflictError             unique / foreign-key / check violation (names the constraint)
    │   ├── InvalidQueryError         bad field or operator, hidden field, limit over cap, cursor
    │   ├── RetriesExhaustedError     a retried unit of work kept failing with a retryable error
    │   ├── CommitOutcomeUnknownError the connection was lost during COMMIT: applied or not?
    │   ├── CrossBindWriteError       a unit of work wrote to two binds: refused before COMMIT
    │   └── DatabaseUnavailableError  disconnects, timeouts from a hung server, pool timeouts;
    │                                 nothing was committed (safe to retry the unit of work)
    └── MigrationError                an Alembic operation failed (names the revision)
        └── SchemaDriftError          models and migrations disagree (carries the differences)

SQLAlchemy and driver exceptions are translated at the repository and unit-of-work boundary
(:func:`translate_error`); the original is kept as ``__cause__``. Bound parameter values never
appear in messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "CommitOutcomeUnknownError",
    "ConfigurationError",
    "ConflictError",
    "CrossBindForeignKeyError",
    "CrossBindWriteError",
    "DatabaseUnavailableError",
    "DuplicateRepositoryError",
    "DuplicateTableError",
    "ForeignKeyScopeError",
    "InvalidQueryError",
    "MigrationError",
    "MosaicError",
    "NotFoundError",
    "PgBouncerSettingError",
    "PluginCycleError",
    "PluginDependencyError",
    "PluginError",
    "PluginHookError",
    "PluginImportError",
    "RepositoryError",
    "RetriesExhaustedError",
    "SchemaDriftError",
]


class MosaicError(Exception):
    """Root of every sqlmosaic error."""


class ConfigurationError(MosaicError):
    """A setting has an invalid value.

    ``setting`` names the culprit (for example ``"DATABASE_URL"``).
    """

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class PgBouncerSettingError(ConfigurationError):
    """The server connection does not have a statement the driver prepared (SQLSTATE 26000 or
    42P05): the URL points at PgBouncer in transaction pooling mode and ``MOSAIC_PGBOUNCER`` is
    not set, so consecutive transactions ran on different server connections."""

    def __init__(self, message: str) -> None:
        super().__init__(message, setting="MOSAIC_PGBOUNCER")


# --------------------------------------------------------------------------- plugins


class PluginError(MosaicError):
    """A plugin could not be loaded, validated or merged. ``plugins`` names the culprit(s)."""

    def __init__(self, message: str, *, plugins: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.plugins = tuple(plugins)


class PluginImportError(PluginError):
    """A plugin's entry point or module failed to import."""


class PluginHookError(PluginError):
    """A hook implementation does not match its specification or returned a bad value."""


class PluginDependencyError(PluginError):
    """A plugin requires another plugin that is not installed, not allowed or blocked."""


class PluginCycleError(PluginError):
    """Plugins require each other in a cycle; ``cycle`` lists it, first name repeated last."""

    def __init__(self, message: str, *, cycle: Sequence[str]) -> None:
        super().__init__(message, plugins=cycle)
        self.cycle = tuple(cycle)


class DuplicateTableError(PluginError):
    """Two plugins define the same table."""

    def __init__(self, message: str, *, table: str, plugins: Sequence[str]) -> None:
        super().__init__(message, plugins=plugins)
        self.table = table


class DuplicateRepositoryError(PluginError):
    """Two repositories are registered for the same model or under the same key."""


class ForeignKeyScopeError(PluginError):
    """A foreign key points into a plugin that its owner does not require, or that is off."""


class CrossBindForeignKeyError(ForeignKeyScopeError):
    """A foreign key joins tables that ``MOSAIC_BINDS`` puts in different databases (no database
    can enforce it). ``plugins`` and ``tables`` name both sides: the referencing one first."""

    def __init__(self, message: str, *, plugins: Sequence[str], tables: Sequence[str]) -> None:
        super().__init__(message, plugins=plugins)
        self.tables = tuple(tables)


# --------------------------------------------------------------------------- data access


class RepositoryError(MosaicError):
    """An error raised while reading or writing through a repository or unit of work."""


class NotFoundError(RepositoryError):
    """No row matches the given key.

    ``NotFoundError(Book, book_id)`` (the message is built: ``"Book 42 not found"``, the key
    shown with ``str``, never a repr such as ``UUID('...')``), or ``NotFoundError("no such
    book", model="Book", key=book_id)`` with a message of your own.
    """

    def __init__(self, message: str | type, key: Any = None, *, model: str | None = None) -> None:
        if isinstance(message, type):
            model = model or message.__name__
            message = f"{model} {_key_text(key)} not found"
        super().__init__(message)
        self.model = model or ""
        self.key = key


def _key_text(key: Any) -> str:
    """A key for a message: ``42``, ``c6f9...`` (a UUID's str), ``(1, 2)`` for a composite key."""
    if isinstance(key, tuple):
        return "(" + ", ".join(str(part) for part in key) + ")"
    if isinstance(key, dict):
        return "(" + ", ".join(f"{name}={value}" for name, value in key.items()) + ")"
    return str(key)


class ConflictError(RepositoryError):
    """An integrity constraint was violated.

    ``kind`` is one of ``"unique"``, ``"foreign_key"``, ``"not_null"``, ``"check"`` or
    ``"integrity"``; ``constraint`` is the constraint name when the database reports it, and
    ``table`` / ``columns`` when they are known.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str = "integrity",
        constraint: str | None = None,
        table: str | None = None,
        columns: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.constraint = constraint
        self.table = table
        self.columns = tuple(columns)


class InvalidQueryError(RepositoryError):
    """A query was rejected before any SQL was built. ``field`` names the culprit when known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RetriesExhaustedError(RepositoryError):
    """A unit of work failed with a retryable error on every attempt."""

    def __init__(self, message: str, *, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class DatabaseUnavailableError(RepositoryError):
    """The database could not be reached in time: disconnect, hung server, pool exhausted,
    authentication refused. The unit of work was NOT committed: running it again is safe."""


class CommitOutcomeUnknownError(RepositoryError):
    """The connection broke (or timed out) while COMMIT was in flight.

    The server may have committed or not; nobody can tell from the client. Do not retry a
    non-idempotent write blindly: make it idempotent first (a unique idempotency key column
    and ``Repository.upsert``; see docs/reliability.md), then retrying is exactly-once.
    Deliberately not a :class:`DatabaseUnavailableError` ("not applied, retry later").
    """


class CrossBindWriteError(RepositoryError):
    """One unit of work wrote to tables on two binds (databases): refused before COMMIT, so
    neither database committed anything. ``binds`` names them (URLs masked). Write to each
    bind in a unit of its own (see docs/scaling.md: what is atomic and what is not)."""

    def __init__(self, message: str, *, binds: Sequence[str]) -> None:
        super().__init__(message)
        self.binds = tuple(binds)


# --------------------------------------------------------------------------- migrations


class MigrationError(MosaicError):
    """An Alembic operation failed. ``revision`` names the revision when known."""

    def __init__(self, message: str, *, revision: str | None = None) -> None:
        super().__init__(message)
        self.revision = revision


class SchemaDriftError(MigrationError):
    """The database schema and the merged models disagree; ``diffs`` lists the differences."""

    def __init__(self, message: str, *, diffs: Sequence[str]) -> None:
        super().__init__(message)
        self.diffs = tuple(diffs)
