"""Migration checks: as functions (in this session) and as test items (pytester runs)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from sqlmosaic import MigrationError, SchemaDriftError
from sqlmosaic.migrations import alembic_config
from sqlmosaic.testing import (
    check_models_match,
    check_single_head,
    check_stairway,
    check_upgrade_from_empty,
)

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]


def test_checks_as_functions(
    mosaic_backend: str, mosaic_empty_url: str, mosaic_migration_data: Mapping[str, Any]
) -> None:
    config = alembic_config(ROOT / "alembic.ini", url=mosaic_empty_url)
    heads = check_single_head(config)
    walked = check_stairway(config, mosaic_migration_data)  # ends at base again
    assert set(heads) <= set(walked)
    applied = check_upgrade_from_empty(config)
    assert [a.revision for a in applied] == walked
    check_models_match(config)


def test_stairway_rejects_data_for_unknown_revisions(mosaic_empty_url: str) -> None:
    config = alembic_config(ROOT / "alembic.ini", url=mosaic_empty_url)
    with pytest.raises(MigrationError, match="unknown revision"):
        check_stairway(config, {"nope": {}})


def test_upgrade_from_empty_refuses_a_migrated_database(mosaic_url: str) -> None:
    config = alembic_config(ROOT / "alembic.ini", url=mosaic_url)
    with pytest.raises(MigrationError, match="needs an empty database"):
        check_upgrade_from_empty(config)


# ----------------------------------------------------------------------------- as items

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
filterwarnings = error
# the schemathesis and hypothesis plugins are unused here: ~1.7 s of imports per run
addopts = -p no:cacheprovider -rf -p no:schemathesis -p no:hypothesispytest
pytest_alembic_enabled = false
mosaic_alembic_ini = alembic.ini
mosaic_migration_checks = true
mosaic_migration_checks_path = conftest.py
"""

CONFTEST = """
from datetime import UTC, datetime

import pytest

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def mosaic_migration_data():
    return {
        "eab1d300f7dd": {
            "user": [{"id": 1, "email": "a@example.com", "name": "A", "is_active": True,
                      "created_at": T0}],
            "project": [{"id": 1, "name": "p", "description": "", "created_at": T0}],
            "task": [{"id": 1, "project_id": 1, "title": "t", "status": "open", "priority": 0,
                      "assignee_id": 1, "created_at": T0}],
        }
    }
"""

FIRST = "eab1d300f7dd"
HEAD = "663d7d9988c1"  # the head of the shipped history

EXTRA_HEAD = '''"""a second, unmerged root"""

revision = "ffff00000001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
'''


@pytest.fixture
def project(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mosaic_pg_url: str
) -> pytest.Pytester:
    for name in list(os.environ):
        if name.startswith(("PYTEST_XDIST", "MOSAIC_TEST_")):
            monkeypatch.delenv(name)
    # The inner runs use this session's PostgreSQL server (their databases are named after
    # their own pid) instead of starting one each: the server paths are tested in
    # test_plugin_runs.py, the migration checks here.
    server = make_url(mosaic_pg_url)
    monkeypatch.setenv("MOSAIC_TEST_PG_HOST", str(server.host))
    monkeypatch.setenv("MOSAIC_TEST_PG_PORT", str(server.port))
    monkeypatch.setenv("MOSAIC_TEST_PG_USER", str(server.username))
    shutil.copy(ROOT / "alembic.ini", pytester.path / "alembic.ini")
    shutil.copytree(
        ROOT / "alembic", pytester.path / "alembic", ignore=shutil.ignore_patterns("__pycache__")
    )
    pytester.makefile(".ini", pytest=INI)
    pytester.makeconftest(CONFTEST)
    return pytester


def _edit_first_revision(path: Path, old: str, new: str) -> None:
    (script,) = path.glob(f"alembic/versions/*{FIRST}*.py")
    text = script.read_text()
    assert old in text, f"{old!r} not in {script.name}: update this test"
    script.write_text(text.replace(old, new, 1))


def test_items_pass_on_the_real_migrations(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-v", timeout=300)
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(["sqlmosaic: *postgresql: existing server postgres@*"])
    result.stdout.fnmatch_lines_random(
        [
            "conftest.py::sqlmosaic-migrations::test_single_head_per_branch PASSED*",
            "conftest.py::sqlmosaic-migrations::test_upgrade_from_empty[[]postgresql[]] PASSED*",
            "conftest.py::sqlmosaic-migrations::test_upgrade_from_empty[[]sqlite[]] PASSED*",
            "conftest.py::sqlmosaic-migrations::test_models_match_migrations[[]postgresql[]] PASS*",
            "conftest.py::sqlmosaic-migrations::test_models_match_migrations[[]sqlite[]] PASSED*",
            "conftest.py::sqlmosaic-migrations::test_stairway[[]postgresql[]] PASSED*",
            "conftest.py::sqlmosaic-migrations::test_stairway[[]sqlite[]] PASSED*",
        ]
    )


def test_items_off_by_default(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-o", "mosaic_migration_checks=false", timeout=300)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_items_catch_broken_migrations(project: pytest.Pytester, backend: str) -> None:
    # 1. a model column the migration does not create; 2. a downgrade that forgets a table;
    # 3. a second unmerged head.
    _edit_first_revision(
        project.path, '        sa.Column("priority", sa.Integer(), nullable=False),\n', ""
    )
    _edit_first_revision(project.path, '    op.drop_table("project")\n', "")
    (project.path / "alembic" / "versions" / "ffff00000001_extra_head.py").write_text(EXTRA_HEAD)
    result = project.runpytest_subprocess("--mosaic-backends", backend, timeout=300)
    result.assert_outcomes(passed=1, failed=3)
    output = result.stdout.str()
    assert "test_upgrade_from_empty" not in output.split("short test summary")[-1]
    result.stdout.fnmatch_lines(
        [f"*MigrationError: multiple heads: branch (unlabelled) has 2 heads: {HEAD}, ffff00000001*"]
    )
    result.stdout.fnmatch_lines(["*SchemaDriftError: models and migrations differ*"])
    result.stdout.fnmatch_lines(["*task.priority*"])
    result.stdout.fnmatch_lines(
        [f"*MigrationError: stairway: second upgrade (after the downgrade) of revision {FIRST}*"]
    )
    assert SchemaDriftError.__name__ in output
