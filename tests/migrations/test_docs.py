"""docs/migrations.md: every bash and python block runs, in page order, in a project copy."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .helpers import INI, REPO

PAGE = REPO / "docs" / "migrations.md"
BLOCK = re.compile(r"```(bash|python)\n(.*?)```", re.S)


def test_every_block_of_the_migrations_guide_runs(tmp_path: Path) -> None:
    shutil.copytree(
        REPO / "alembic", tmp_path / "alembic", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(INI, tmp_path / "alembic.ini")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_") and k != "DATABASE_URL"
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "200"
    blocks = BLOCK.findall(PAGE.read_text())
    assert [kind for kind, _ in blocks].count("python") >= 3
    assert [kind for kind, _ in blocks].count("bash") >= 4
    for i, (kind, code) in enumerate(blocks):
        if kind == "python":
            script = tmp_path / f"block{i}.py"
            script.write_text(code)
            argv = [sys.executable, "-W", "error", str(script)]
        else:
            argv = ["bash", "-e", "-c", code]
        done = subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, (
            f"block {i} ({kind}) failed:\n{code}\n{done.stdout}\n{done.stderr}"
        )
        assert done.stdout.strip(), f"block {i} ({kind}) printed nothing:\n{code}"
    assert (tmp_path / "mosaic.db").exists()  # the default URL, relative to the project
