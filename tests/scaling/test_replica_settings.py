"""MOSAIC_READ_REPLICA_URLS: parsed from the environment, normalised, passwords masked."""

from __future__ import annotations

import logging

import pytest

from sqlmosaic import ConfigurationError, Database, MosaicSettings


def test_replica_urls_from_the_environment_are_masked_everywhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "MOSAIC_READ_REPLICA_URLS",
        "postgresql://app:s3cret-one@r1:5432/app, postgres://app:s3cret-two@r2/app",
    )
    settings = MosaicSettings.load(database_url="postgresql://app:s3cret-p@p/app")
    assert settings.read_replica_urls == [
        "postgresql+asyncpg://app:s3cret-one@r1:5432/app",
        "postgresql+asyncpg://app:s3cret-two@r2/app",
    ]
    assert settings.masked_replica_urls == [
        "postgresql+asyncpg://app:***@r1:5432/app",
        "postgresql+asyncpg://app:***@r2/app",
    ]
    database = Database(settings)
    shown = repr(settings) + repr(database) + str(database.describe())
    assert "s3cret" not in shown
    assert "app:***@r2/app" in str(database.describe())


def test_a_bad_replica_url_is_a_configuration_error_without_its_password() -> None:
    with pytest.raises(ConfigurationError) as info:
        MosaicSettings.load(read_replica_urls="mysql://app:s3cret@r1/app")
    assert info.value.setting == "MOSAIC_READ_REPLICA_URLS"
    assert "s3cret" not in str(info.value)


def test_sqlite_is_not_a_replica() -> None:
    with pytest.raises(ConfigurationError, match="read replicas are PostgreSQL"):
        MosaicSettings.load(read_replica_urls="sqlite+aiosqlite:///copy.db")


async def test_connect_logs_only_masked_replica_urls(caplog: pytest.LogCaptureFixture) -> None:
    settings = MosaicSettings.load(
        database_url="postgresql://app:s3cret@127.0.0.1:1/app",
        read_replica_urls="postgresql://app:s3cret@127.0.0.1:1/app",
    )
    with caplog.at_level(logging.INFO, logger="sqlmosaic"):
        async with Database(settings):  # creates engines; connects to nothing
            pass
    assert "app:***@127.0.0.1:1/app" in caplog.text
    assert "s3cret" not in caplog.text
