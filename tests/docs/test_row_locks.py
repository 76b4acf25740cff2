"""The row-lock sample of docs/core.md on PostgreSQL: 10 concurrent check-then-insert calls,
exactly one succeeds. (test_doc_samples runs the same script on SQLite.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "docs" / "core.md"


def _lend_sample() -> str:
    blocks = re.findall(r"```python\n(.*?)```", CORE.read_text(), re.S)
    (sample,) = [b for b in blocks if "async def lend(" in b]
    return sample


@pytest.mark.parametrize("mosaic_backend", ["postgresql"], indirect=True)
def test_lend_sample_on_postgresql_lends_once(mosaic_fresh_url: str, tmp_path: Path) -> None:
    script = tmp_path / "lend.py"
    script.write_text(_lend_sample())
    result = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=tmp_path,
        env={**os.environ, "LEND_DATABASE_URL": mosaic_fresh_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1 of 10 lent"
