from __future__ import annotations

from pathlib import Path

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


@pytest.mark.parametrize("variable", ["DATABASE_URL", "MOSAIC_DATABASE_URL"])
def test_a_bad_url_names_the_variable_the_user_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("MOSAIC_DATABASE_URL", raising=False)
    monkeypatch.setenv(variable, "postgresql+psycopg2://app:hunter2@db/x")
    with pytest.raises(ConfigurationError) as info:
        MosaicSettings.load()
    assert info.value.setting == variable
    assert str(info.value).startswith(f"invalid settings: {variable}: ")
    assert "MOSAIC_MOSAIC" not in str(info.value)
    assert "hunter2" not in str(info.value)


def test_settings_read_a_dotenv_file_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("MOSAIC_DATABASE_URL", raising=False)
    monkeypatch.delenv("MOSAIC_POOL_SIZE", raising=False)
    (tmp_path / ".env").write_text(
        "DATABASE_URL=postgresql://u:p@h/from_file\nMOSAIC_POOL_SIZE=3\nUNRELATED=1\n"
    )
    settings = MosaicSettings.load()
    assert settings.url.database == "from_file"
    assert settings.pool_size == 3
    monkeypatch.setenv("MOSAIC_POOL_SIZE", "4")
    assert MosaicSettings.load().pool_size == 4
    (tmp_path / ".env").write_text("DATABASE_URL=mysql://u:hunter2@h/x\n")
    with pytest.raises(ConfigurationError) as info:
        MosaicSettings.load()
    assert "DATABASE_URL (in .env): " in str(info.value)
    assert "hunter2" not in str(info.value)
