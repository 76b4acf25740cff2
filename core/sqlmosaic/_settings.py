"""Settings from the environment (pydantic-settings), validated once at start.

``DATABASE_URL`` names the database; ``MOSAIC_DATABASE_URL`` overrides it. Every other setting
is ``MOSAIC_<NAME>``. The variables may also be in a ``.env`` file in the working directory
(the environment wins over the file). Invalid values raise :class:`~sqlmosaic.ConfigurationError`
naming the variable that was set, with any password masked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL

from ._exceptions import ConfigurationError
from ._url import mask_password, mask_url, parse_url

__all__ = ["DEFAULT_DATABASE_URL", "MosaicSettings"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./mosaic.db"
ENV_FILE = ".env"
_URL_NAMES = ("MOSAIC_DATABASE_URL", "DATABASE_URL")  # first one set wins

_ASYNC_DRIVERS = {
    "postgresql": "asyncpg",
    "postgres": "asyncpg",
    "sqlite": "aiosqlite",
}
_SUPPORTED = {("postgresql", "asyncpg"), ("postgresql", "psycopg"), ("sqlite", "aiosqlite")}


def _split_names(value: Any) -> Any:
    if value is None or value == "":
        return None if value is None else []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class MosaicSettings(BaseSettings):
    """Everything a host needs to connect and load plugins.

    Build with :meth:`load` (translates validation errors) or directly for tests.
    """

    model_config = SettingsConfigDict(
        env_prefix="MOSAIC_",
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("MOSAIC_DATABASE_URL", "DATABASE_URL", "database_url"),
        repr=False,
        description="SQLAlchemy async URL (postgresql+asyncpg://... or sqlite+aiosqlite:///...).",
    )
    pool_size: int = Field(default=10, ge=1, le=1000)
    max_overflow: int = Field(default=10, ge=0, le=1000)
    pool_timeout: float = Field(default=30.0, gt=0)
    pool_recycle: int = Field(default=1800, ge=-1)
    pool_ping_after: float | None = Field(
        default=10.0,
        ge=0,
        description=(
            "PostgreSQL: ping a pooled connection at checkout only when it sat idle this many "
            "seconds (0: every checkout, like pool_pre_ping; None: never). A connection the "
            "driver already saw closed is replaced at no cost either way."
        ),
    )
    echo: bool = False
    warm_up: bool = Field(
        default=False,
        description=(
            "At start, run every repository's primary-key read and default page once (no row "
            "matches), on the primary and each replica, so each model's first request is as "
            "fast as its second; ~4 ms of start per repository."
        ),
    )
    query_cache_size: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Entries of SQLAlchemy's compiled-statement cache, per engine. None: 500 "
            "(SQLAlchemy's default), or 4 per repository a host loads if that is more."
        ),
    )
    statement_timeout: float | None = Field(
        default=None,
        gt=0,
        description=(
            "PostgreSQL statement_timeout for app sessions, seconds (server-side, sent as a "
            "startup parameter: PgBouncer needs it in ignore_startup_parameters)."
        ),
    )
    command_timeout: float | None = Field(
        default=None,
        gt=0,
        description=(
            "asyncpg client-side timeout per statement, seconds (also catches a server that "
            "stopped answering; arms a timer per statement, ~3% of a short query)."
        ),
    )
    connect_timeout: float = Field(default=10.0, gt=0)
    application_name: str = Field(default="sqlmosaic", min_length=1, max_length=63)
    pgbouncer: bool = Field(
        default=False,
        description=(
            "DATABASE_URL points at a PgBouncer in transaction pooling mode: no prepared "
            "statement cache, a unique name per prepared statement, no session-level settings."
        ),
    )
    sqlite_busy_timeout: float = Field(default=30.0, ge=0, description="seconds")
    read_replica_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        repr=False,
        description="Streaming replicas (comma-separated URLs) for read-only units of work.",
    )
    read_replica_retry_after: float = Field(
        default=5.0, gt=0, description="seconds a replica that failed stays out of the rotation"
    )
    binds: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        repr=False,
        description=(
            "Per-plugin binds, plugin=url,...: those plugins' tables live in that database "
            "(their sessions route there; each such plugin migrates its own branch there)."
        ),
    )
    plugins: Annotated[list[str] | None, NoDecode] = Field(
        default=None, description="Allowlist of plugin names; None loads every installed plugin."
    )
    blocked_plugins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    migration_lock_timeout: float = Field(default=5.0, gt=0, description="seconds")
    migration_statement_timeout: float = Field(default=600.0, gt=0, description="seconds")

    @field_validator("plugins", "blocked_plugins", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        return _split_names(value)

    @field_validator("read_replica_urls", mode="before")
    @classmethod
    def _replica_urls(cls, value: Any) -> Any:
        urls = _split_names(value)
        if not isinstance(urls, list):
            return urls
        normalised = [cls._normalise_url(url) for url in urls]
        if any(str(url).startswith("sqlite") for url in normalised):
            raise ValueError("read replicas are PostgreSQL servers (streaming replication)")
        return normalised

    @field_validator("binds", mode="before")
    @classmethod
    def _binds(cls, value: Any) -> Any:
        if value is None or value == "":
            return {}
        if isinstance(value, str):
            pairs: dict[str, str] = {}
            for part in _split_names(value):
                plugin, sep, url = part.partition("=")
                if not sep or not plugin.strip() or not url.strip():
                    raise ValueError(
                        f"expected plugin=url, got {mask_password(part)!r} (comma-separated)"
                    )
                if plugin.strip() in pairs:
                    raise ValueError(f"plugin {plugin.strip()!r} is bound twice")
                pairs[plugin.strip()] = url.strip()
            value = pairs
        if not isinstance(value, dict):
            return value
        return {str(plugin): cls._normalise_url(url) for plugin, url in value.items()}

    @field_validator("database_url", mode="before")
    @classmethod
    def _normalise_url(cls, value: Any) -> Any:
        if isinstance(value, URL):
            value = value.render_as_string(hide_password=False)
        if not isinstance(value, str):
            return value
        url = parse_url(value)
        backend, _, driver = url.drivername.partition("+")
        if backend == "postgres":
            backend = "postgresql"
        if not driver:
            driver = _ASYNC_DRIVERS.get(backend, "")
        if (backend, driver) not in _SUPPORTED:
            raise ValueError(
                f"unsupported driver {url.drivername!r}: sqlmosaic is async-only; use "
                "postgresql+asyncpg://, postgresql+psycopg:// or sqlite+aiosqlite://"
            )
        return url.set(drivername=f"{backend}+{driver}").render_as_string(hide_password=False)

    @classmethod
    def load(cls, **overrides: Any) -> Self:
        """Read the environment (plus ``overrides``); bad input raises ConfigurationError."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise _configuration_error(
                exc, url_from_overrides="database_url" in overrides
            ) from None

    # -- derived, read-only views -------------------------------------------------------

    @property
    def url(self) -> URL:
        """The database URL as a SQLAlchemy :class:`~sqlalchemy.engine.URL`."""
        return parse_url(self.database_url)

    @property
    def masked_url(self) -> str:
        """The database URL with its password masked, for display."""
        return mask_url(self.database_url)

    @property
    def masked_replica_urls(self) -> list[str]:
        """The read replicas' URLs with passwords masked, for display."""
        return [mask_url(url) for url in self.read_replica_urls]

    @property
    def masked_binds(self) -> dict[str, str]:
        """``{plugin: URL}`` of the per-plugin binds, passwords masked, for display."""
        return {plugin: mask_url(url) for plugin, url in self.binds.items()}

    @property
    def backend(self) -> str:
        """``"postgresql"`` or ``"sqlite"``."""
        return self.url.get_backend_name()


def _url_variable() -> str:
    """The variable the database URL came from: the environment first, then ``.env``."""
    for name in _URL_NAMES:
        if os.environ.get(name):
            return name
    if Path(ENV_FILE).is_file():
        from dotenv import dotenv_values

        values = dotenv_values(ENV_FILE)
        for name in _URL_NAMES:
            if values.get(name):
                return f"{name} (in {ENV_FILE})"
    return "DATABASE_URL"


def _configuration_error(
    exc: ValidationError, *, url_from_overrides: bool = False
) -> ConfigurationError:
    problems = []
    first: str | None = None
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(part) for part in err["loc"]) or "settings"
        if loc.upper() in ("DATABASE_URL", *_URL_NAMES):
            name = "DATABASE_URL" if url_from_overrides else _url_variable()
        else:
            name = f"MOSAIC_{loc.upper()}"
        first = first or name.split(" ")[0]
        problems.append(f"{name}: {mask_password(str(err['msg']))}")
    return ConfigurationError("invalid settings: " + "; ".join(problems), setting=first)
