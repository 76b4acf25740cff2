from __future__ import annotations

import pytest

from sqlmosaic import DEFAULT_DATABASE_URL, ConfigurationError, MosaicSettings


def test_defaults_to_embedded_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("MOSAIC_DATABASE_URL", raising=False)
    settings = MosaicSettings.load()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.backend == "sqlite"


def test_mosaic_database_url_overrides_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@h/one")
    assert MosaicSettings.load().url.database == "one"
    monkeypatch.setenv("MOSAIC_DATABASE_URL", "postgresql://u:p@h/two")
    settings = MosaicSettings.load()
    assert settings.url.database == "two"
    assert settings.url.drivername == "postgresql+asyncpg"  # async driver filled in


def test_plugin_lists_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOSAIC_PLUGINS", "accounts, tasks")
    monkeypatch.setenv("MOSAIC_BLOCKED_PLUGINS", "legacy")
    settings = MosaicSettings.load()
    assert settings.plugins == ["accounts", "tasks"]
    assert settings.blocked_plugins == ["legacy"]


def test_no_allowlist_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOSAIC_PLUGINS", raising=False)
    assert MosaicSettings.load().plugins is None


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"pool_size": 0}, "MOSAIC_POOL_SIZE"),
        ({"pool_timeout": -1}, "MOSAIC_POOL_TIMEOUT"),
        ({"statement_timeout": 0}, "MOSAIC_STATEMENT_TIMEOUT"),
        ({"database_url": "mysql+pymysql://app:hunter2@db/x"}, "DATABASE_URL"),
        ({"database_url": "postgresql+psycopg2://app:hunter2@db/x"}, "DATABASE_URL"),
        ({"database_url": "not a url at all :: hunter2"}, "DATABASE_URL"),
    ],
)
def test_invalid_values_name_the_setting_and_mask_the_password(
    overrides: dict[str, object], setting: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        MosaicSettings.load(**overrides)
    assert info.value.setting == setting
    assert setting in str(info.value)
    assert "hunter2" not in str(info.value)


def test_invalid_environment_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOSAIC_POOL_SIZE", "many")
    with pytest.raises(ConfigurationError, match="MOSAIC_POOL_SIZE"):
        MosaicSettings.load()


def test_repr_and_masked_url_hide_the_password() -> None:
    settings = MosaicSettings.load(database_url="postgresql+asyncpg://app:p%40ss@db:5432/app")
    assert "p%40ss" not in repr(settings)
    assert "p@ss" not in repr(settings)
    assert settings.masked_url == "postgresql+asyncpg://app:***@db:5432/app"
