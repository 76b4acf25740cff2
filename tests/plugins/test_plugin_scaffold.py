"""``mosaic plugin new`` and standalone plugin repositories: a plugin copied to a temp dir runs
its own pytest with no host (its databases built from the migrations it ships), on PostgreSQL
and SQLite. Subprocesses on purpose: the CLI and a separate pytest run are what is tested."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sqlmosaic.cli import build_app

BIN = Path(sys.executable).parent


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MOSAIC_", "PYTEST_")) and k not in {"DATABASE_URL", "PYTHONPATH"}
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mosaic plugin new bookmarks`` (as a user runs it)."""
    where = tmp_path_factory.mktemp("scaffold")
    # A host's allowlist in the environment does not apply to the scaffold's own first revision.
    env = clean_env(MOSAIC_PLUGINS="accounts")
    done = run([str(BIN / "mosaic"), "plugin", "new", "bookmarks"], where, env)
    assert done.returncode == 0, done.stderr
    return where / "bookmarks"


def test_plugin_new_writes_a_distribution_with_its_first_revision(scaffolded: Path) -> None:
    pyproject = (scaffolded / "pyproject.toml").read_text()
    assert '[project.entry-points.sqlmosaic]\nbookmarks = "mosaic_bookmarks.plugin"' in pyproject
    assert 'mosaic_plugins = "bookmarks"' in pyproject
    [first] = (scaffolded / "src" / "mosaic_bookmarks" / "migrations").glob("*.py")
    assert first.name.endswith("_create_bookmarks_tables.py")
    source = first.read_text()
    assert 'branch_labels: str | Sequence[str] | None = ("bookmarks",)' in source
    assert "down_revision: str | Sequence[str] | None = None" in source
    assert 'op.create_table(\n        "bookmarks_item"' in source
    assert (scaffolded / "tests" / "test_bookmarks.py").is_file()


def test_plugin_new_refuses_bad_names_and_non_empty_directories(tmp_path: Path) -> None:
    bad = CliRunner().invoke(
        build_app(), ["plugin", "new", "Bad-Name", "--dir", str(tmp_path)], env={"COLUMNS": "250"}
    )
    assert bad.exit_code == 1
    assert "plugin name 'Bad-Name'" in bad.stderr
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    taken = CliRunner().invoke(
        build_app(),
        ["plugin", "new", "ok", "--dir", str(tmp_path / "taken")],
        env={"COLUMNS": "250"},
    )
    assert taken.exit_code == 1
    assert "is not empty" in " ".join(taken.stderr.split())


def test_a_plugin_copied_to_a_temp_dir_passes_its_own_pytest_with_no_host(
    scaffolded: Path, tmp_path: Path, wheel_builder: Callable[[Path, Path], Path]
) -> None:
    # The plugin's own repository, somewhere else: no alembic.ini, no host.
    repo = tmp_path / "mosaic-bookmarks"
    shutil.copytree(scaffolded, repo)
    assert not (repo / "alembic.ini").exists()
    # Installed as a user would (its entry point discoverable), here into a private directory.
    site = tmp_path / "site"
    wheel = wheel_builder(repo, tmp_path)
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet"]
    installed = run(
        [*pip, "--no-compile", "--target", str(site), str(wheel)], tmp_path, clean_env()
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    env = clean_env(PYTHONPATH=str(site))
    done = run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider"], repo, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_add_and_get_an_item[postgresql] PASSED" in done.stdout
    assert "test_add_and_get_an_item[sqlite] PASSED" in done.stdout
    assert "3 passed" in done.stdout
    assert "plugins=bookmarks" in done.stdout

    # In the same repository, `mosaic db` works on the shipped history alone.
    db = f"sqlite+aiosqlite:///{tmp_path / 'dev.db'}"
    mosaic = [str(BIN / "mosaic"), "db"]
    env = clean_env(PYTHONPATH=str(site), MOSAIC_PLUGINS="bookmarks", DATABASE_URL=db)
    upgraded = run([*mosaic, "upgrade"], repo, env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "create bookmarks tables" in upgraded.stdout
    revision = run(
        [*mosaic, "revision", "--plugin", "bookmarks", "--autogenerate", "-m", "x"], repo, env
    )
    assert revision.returncode == 0, revision.stderr
    assert "nothing written" in revision.stdout
