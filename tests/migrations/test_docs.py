"""docs/migrations.md: every bash and python block runs, in page order, in a project copy.

A bash block made only of ``mosaic ...`` commands (optionally piped into ``head -n N``) runs
in process through typer's CliRunner, and python blocks run in process too: starting a Python
interpreter per command cost most of this test's time. Any other bash block (the adopt
example, with ``python -c`` and the installed ``mosaic`` script) still runs in ``bash``, so the
page keeps one end-to-end check of the console script; tests/migrations/test_cli.py has more.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sqlmosaic.cli import build_app

from .helpers import INI, REPO

PAGE = REPO / "docs" / "migrations.md"
BLOCK = re.compile(r"```(bash|python)\n(.*?)```", re.S)


def mosaic_calls(code: str) -> list[tuple[list[str], int | None]] | None:
    """The block as ``(argv after "mosaic", head lines)`` calls, or None if it needs a shell."""
    calls: list[tuple[list[str], int | None]] = []
    for line in code.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:  # a quote spanning lines: a real shell is needed
            return None
        if not words:
            continue
        if "$" in line or "`" in line:
            return None
        head = None
        if "|" in words:
            bar = words.index("|")
            tail = words[bar + 1 :]
            if len(tail) != 3 or tail[:2] != ["head", "-n"] or not tail[2].isdigit():
                return None
            head, words = int(tail[2]), words[:bar]
        if words[0] != "mosaic" or any(w in {";", "&&", "||", ">", "<"} for w in words):
            return None
        calls.append((words[1:], head))
    return calls


def test_every_block_of_the_migrations_guide_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(
        REPO / "alembic", tmp_path / "alembic", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(INI, tmp_path / "alembic.ini")
    for name in list(os.environ):
        if name.startswith("MOSAIC_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    blocks = BLOCK.findall(PAGE.read_text())
    assert [kind for kind, _ in blocks].count("python") >= 3
    assert [kind for kind, _ in blocks].count("bash") >= 4
    shell_blocks = 0
    for i, (kind, code) in enumerate(blocks):
        calls = mosaic_calls(code) if kind == "bash" else None
        if kind == "python":
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"{PAGE.name} block {i}", "exec"), {"__name__": "__main__"})
            stdout = out.getvalue()
        elif calls is not None:
            stdout = ""
            for argv, head in calls:
                result = CliRunner().invoke(build_app(), argv)
                assert result.exit_code == 0, (
                    f"block {i}: mosaic {shlex.join(argv)} failed:\n{result.output}"
                )
                lines = result.stdout.splitlines(keepends=True)
                stdout += "".join(lines[:head] if head is not None else lines)
        else:
            shell_blocks += 1
            done = subprocess.run(
                ["bash", "-e", "-c", code],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, (
                f"block {i} ({kind}) failed:\n{code}\n{done.stdout}\n{done.stderr}"
            )
            stdout = done.stdout
        assert stdout.strip(), f"block {i} ({kind}) printed nothing:\n{code}"
    assert shell_blocks >= 1  # the console script itself, through a real shell
    assert (tmp_path / "mosaic.db").exists()  # the default URL, relative to the project


def test_mosaic_calls_reads_only_plain_mosaic_commands() -> None:
    assert mosaic_calls("mosaic db sql | head -n 12  # first lines\n\nmosaic db heads\n") == [
        (["db", "sql"], 12),
        (["db", "heads"], None),
    ]
    assert mosaic_calls("python -c '\nprint(1)\n'\nmosaic db current") is None
    assert mosaic_calls("mosaic db sql | tail -n 3") is None
    assert mosaic_calls("mosaic db upgrade && rm x") is None
