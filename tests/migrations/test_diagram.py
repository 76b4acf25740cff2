"""``mosaic db diagram``: the merged schema as Mermaid, grouped by plugin."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from sqlmosaic.cli import build_app

from .helpers import REPO

pytestmark = pytest.mark.plugin_branches

DOCS = REPO / "docs" / "plugins.md"


def diagram(*args: str) -> str:
    result = CliRunner().invoke(build_app(), ["db", "diagram", *args], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_reference_hosts_diagram_is_the_one_in_the_docs() -> None:
    out = diagram()
    match = re.search(r"```mermaid\n(.*?)```", DOCS.read_text(), re.S)
    assert match is not None
    assert out == match.group(1)
    assert out.startswith("erDiagram\n    %% plugin accounts\n")
    assert "    %% plugin comments\n    comment {\n" in out
    # cross-plugin foreign keys are visible and say so; an optional one has a zero-or-one end
    assert '    task ||--o{ comment : "task_id (tasks -> comments)"\n' in out
    assert '    user |o--o{ task : "assignee_id (accounts -> tasks)"\n' in out
    assert '    project ||--o{ task : "project_id"\n' in out


def test_the_diagram_of_one_plugin_shows_what_its_foreign_keys_reach() -> None:
    out = diagram("--plugin", "comments")
    assert {"comment {", "task {", "user {"} <= {line.strip() for line in out.splitlines()}
    assert "project {" not in out
    assert "membership {" not in out
    assert "user |o--o{ task" not in out  # only the plugin's own relationships
    assert 'user |o--o{ comment : "author_id (accounts -> comments)"' in out


def test_the_diagram_of_a_plugin_not_enabled_is_refused() -> None:
    result = CliRunner().invoke(build_app(), ["db", "diagram", "--plugin", "nope"])
    assert result.exit_code == 1
    assert "plugin 'nope' is not enabled" in result.stderr
