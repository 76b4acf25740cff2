"""CLI output: no wrapping at 80 columns when not a terminal; --json failures are JSON."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sqlmosaic.cli import build_app

LONG_URL_ERROR = "postgresql+psycopg2://app:hunter2@db.example.internal:5432/a_database_name"


@pytest.fixture(autouse=True)
def no_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)


def test_an_error_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", LONG_URL_ERROR)
    monkeypatch.delenv("MOSAIC_DATABASE_URL", raising=False)
    result = CliRunner().invoke(build_app(), ["plugins"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert len(lines[0]) > 80
    assert lines[0].startswith("error: invalid settings: DATABASE_URL: ")
    assert "hunter2" not in result.stderr


def test_a_table_row_is_not_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("MOSAIC_DATABASE_URL", raising=False)
    monkeypatch.delenv("MOSAIC_PLUGINS", raising=False)
    monkeypatch.setenv("MOSAIC_BLOCKED_PLUGINS", ",".join(f"blocked_{i:02}" for i in range(12)))
    result = CliRunner().invoke(build_app(), ["plugins"])
    assert result.exit_code == 0, result.output
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith("blocklist")]
    assert line.endswith("blocked_11"), line  # the whole list on one line, past column 80
    assert len(line) > 80


def test_plugins_json_reports_a_failure_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.setenv("DATABASE_URL", LONG_URL_ERROR)
    monkeypatch.delenv("MOSAIC_DATABASE_URL", raising=False)
    result = CliRunner().invoke(build_app(), ["plugins", "--json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)
    assert error["error"] == "ConfigurationError"
    assert error["detail"].startswith("invalid settings: DATABASE_URL: ")
    assert "hunter2" not in result.stdout


def test_relative_revisions_past_the_end_are_explained(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    ini = str(Path(__file__).resolve().parents[2] / "alembic.ini")
    app = build_app()
    upgraded = CliRunner().invoke(app, ["db", "upgrade", "--database-url", url, "-c", ini])
    assert upgraded.exit_code == 0, upgraded.output
    down = CliRunner().invoke(app, ["db", "downgrade", "-5", "--database-url", url, "-c", ini])
    assert down.exit_code == 1
    assert "error: cannot go 5 revision(s) down: fewer than 5 revision(s) are applied" in (
        down.stderr
    )
    assert "didn't produce" not in down.stderr
    up = CliRunner().invoke(app, ["db", "upgrade", "+2", "--database-url", url, "-c", ini])
    assert up.exit_code == 1
    assert "cannot go 2 revision(s) up: there are fewer than 2 newer revision(s)" in up.stderr
