"""``mosaic plugins``: enabled plugins in load order, disabled / blocked ones, table and JSON."""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sqlmosaic.cli import build_app

Install = Callable[..., list[Path]]


def invoke(tmp_path: Path, *args: str, **env: str) -> Any:
    runner = CliRunner()
    environment = {
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite'}",
        "COLUMNS": "200",
    }
    return runner.invoke(build_app(), ["plugins", *args], env={**environment, **env})


def test_json_lists_enabled_plugins_in_load_order_then_skipped(
    installed: Install, tmp_path: Path
) -> None:
    installed("notes", "audit", "tripwire")

    result = invoke(
        tmp_path,
        "--json",
        MOSAIC_PLUGINS="tasks,audit,notes,accounts",
        MOSAIC_BLOCKED_PLUGINS="tripwire",
    )

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["allowlist"] == ["tasks", "audit", "notes", "accounts"]
    assert data["blocklist"] == ["tripwire"]
    enabled = [p for p in data["plugins"] if p["status"] == "enabled"]
    assert [(p["order"], p["name"]) for p in enabled] == [
        (1, "accounts"),
        (2, "notes"),
        (3, "audit"),
        (4, "tasks"),
    ]
    accounts, notes, audit, tasks = enabled
    assert accounts == {
        "name": "accounts",
        "status": "enabled",
        "order": 1,
        "version": importlib.metadata.version("sqlmosaic-accounts"),
        "source": "entry_point",
        "requires": [],
        "tables": ["membership", "team", "user"],
        "repositories": ["accounts.memberships", "accounts.teams", "accounts.users"],
    }
    assert (notes["version"], notes["requires"], notes["tables"], notes["repositories"]) == (
        "1.2.3",
        ["accounts"],
        ["note"],
        ["notes.notes"],
    )
    assert (audit["requires"], audit["tables"], audit["repositories"]) == (["notes"], [], [])
    assert tasks["repositories"] == ["tasks.projects", "tasks.tasks"]
    skipped = {p["name"]: p for p in data["plugins"][4:]}
    assert skipped["tripwire"] == {
        "name": "tripwire",
        "status": "blocked",
        "reason": "listed in MOSAIC_BLOCKED_PLUGINS",
        "version": "6.6.6",
    }
    # Every other installed plugin is listed as disabled (not in the allowlist).
    assert {p["status"] for n, p in skipped.items() if n != "tripwire"} <= {"disabled"}


def test_json_marks_plugins_outside_the_allowlist_as_disabled(tmp_path: Path) -> None:
    result = invoke(tmp_path, "--json", MOSAIC_PLUGINS="accounts")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    statuses = {p["name"]: p["status"] for p in data["plugins"]}
    assert data["plugins"][0]["name"] == "accounts"
    assert statuses["accounts"] == "enabled"
    assert statuses["tasks"] == "disabled"
    assert set(statuses.values()) == {"enabled", "disabled"}
    [tasks] = [p for p in data["plugins"] if p["name"] == "tasks"]
    assert tasks["reason"] == "not listed in MOSAIC_PLUGINS"


def test_table_output(installed: Install, tmp_path: Path) -> None:
    installed("notes", "tripwire")

    result = invoke(tmp_path, MOSAIC_PLUGINS="accounts,notes", MOSAIC_BLOCKED_PLUGINS="tripwire")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # One row per plugin (continuation lines of multi-line cells have an empty plugin cell).
    rows = [line for line in lines if line.count("│") == 8 and line.split("│")[2].strip()]
    row = {line.split("│")[2].strip(): line for line in rows}
    assert list(row)[:2] == ["accounts", "notes"]  # enabled first, in load order
    assert {"tasks", "tripwire"} <= set(row)
    cells = [c.strip() for c in row["notes"].split("│")[1:-1]]
    assert cells == ["2", "notes", "1.2.3", "enabled", "accounts", "note", "notes.notes"]
    assert [c.strip() for c in row["tasks"].split("│")[1:5]] == ["-", "tasks", "0.1.0", "disabled"]
    assert [c.strip() for c in row["tripwire"].split("│")[1:5]] == [
        "-",
        "tripwire",
        "6.6.6",
        "blocked",
    ]
    assert "allowlist (MOSAIC_PLUGINS): accounts, notes" in result.stdout
    assert "blocklist (MOSAIC_BLOCKED_PLUGINS): tripwire" in result.stdout


def test_table_output_without_allowlist_says_so(tmp_path: Path) -> None:
    result = invoke(tmp_path)

    assert result.exit_code == 0, result.output
    assert "allowlist (MOSAIC_PLUGINS): not set, every installed plugin loads" in result.stdout
    assert "│ 1 │ accounts" in result.stdout
    assert "│ 2 │ tasks" in result.stdout


@pytest.mark.parametrize("as_json", [False, True])
def test_a_plugin_that_would_stop_the_host_fails_the_command_naming_it(
    installed: Install, tmp_path: Path, as_json: bool
) -> None:
    installed("broken")

    result = invoke(tmp_path, *(["--json"] if as_json else []), MOSAIC_PLUGINS="needsghost")

    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "error: plugin 'needsghost' requires plugin 'ghost', which is not installed" in message
    if as_json:  # and the JSON document a script reads says the same
        assert json.loads(result.stdout) == {
            "error": "PluginDependencyError",
            "detail": "plugin 'needsghost' requires plugin 'ghost', which is not installed",
        }
    else:
        assert result.stdout == ""


def test_help_mentions_json(tmp_path: Path) -> None:
    result = invoke(tmp_path, "--help")

    assert result.exit_code == 0
    assert "--json" in result.stdout
    assert "load order" in result.stdout
