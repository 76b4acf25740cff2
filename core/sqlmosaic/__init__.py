"""sqlmosaic: a plugin-based, framework-agnostic async data-access toolkit.

Built on SQLModel, SQLAlchemy 2 (async), asyncpg/aiosqlite, Alembic and pluggy. The public API
is exactly what ``__all__`` lists; modules whose names start with ``_`` are private.
"""

from ._database import Database
from ._engine import create_engine, create_session_factory
from ._exceptions import (
    CommitOutcomeUnknownError,
    ConfigurationError,
    ConflictError,
    CrossBindForeignKeyError,
    CrossBindWriteError,
    DatabaseUnavailableError,
    DuplicateRepositoryError,
    DuplicateTableError,
    ForeignKeyScopeError,
    InvalidQueryError,
    MigrationError,
    MosaicError,
    NotFoundError,
    PgBouncerSettingError,
    PluginCycleError,
    PluginDependencyError,
    PluginError,
    PluginHookError,
    PluginImportError,
    RepositoryError,
    RetriesExhaustedError,
    SchemaDriftError,
)
from ._host import Mosaic, UnitOfWork
from ._metadata import NAMING_CONVENTION, OWNER_KEY, table_owner
from ._plugins import PluginInfo, PluginSet, SkippedPlugin, load_plugins, make_plugin_manager
from ._query import OPERATORS, Filter, Page
from ._repository import ModelT, Repository
from ._settings import DEFAULT_DATABASE_URL, MosaicSettings
from ._translate import is_retryable, translate_error
from ._uow import IsolationLevel, Retry, run_in_transaction, transaction, transactional
from ._url import mask_password, mask_url
from ._wait import wait_for_database
from .hookspecs import hookimpl, hookspec

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_DATABASE_URL",
    "NAMING_CONVENTION",
    "OPERATORS",
    "OWNER_KEY",
    "CommitOutcomeUnknownError",
    "ConfigurationError",
    "ConflictError",
    "CrossBindForeignKeyError",
    "CrossBindWriteError",
    "Database",
    "DatabaseUnavailableError",
    "DuplicateRepositoryError",
    "DuplicateTableError",
    "Filter",
    "ForeignKeyScopeError",
    "InvalidQueryError",
    "IsolationLevel",
    "MigrationError",
    "ModelT",
    "Mosaic",
    "MosaicError",
    "MosaicSettings",
    "NotFoundError",
    "Page",
    "PgBouncerSettingError",
    "PluginCycleError",
    "PluginDependencyError",
    "PluginError",
    "PluginHookError",
    "PluginImportError",
    "PluginInfo",
    "PluginSet",
    "Repository",
    "RepositoryError",
    "RetriesExhaustedError",
    "Retry",
    "SchemaDriftError",
    "SkippedPlugin",
    "UnitOfWork",
    "__version__",
    "create_engine",
    "create_session_factory",
    "hookimpl",
    "hookspec",
    "is_retryable",
    "load_plugins",
    "make_plugin_manager",
    "mask_password",
    "mask_url",
    "run_in_transaction",
    "table_owner",
    "transaction",
    "transactional",
    "translate_error",
    "wait_for_database",
]
