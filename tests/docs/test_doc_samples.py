"""Every ```python block in the core docs is a complete script: run each one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
RUNNABLE_PAGES = ["quickstart.md", "core.md", "scaling.md", "reliability.md"]


def _blocks() -> list[tuple[str, str]]:
    found = []
    for page in RUNNABLE_PAGES:
        for i, code in enumerate(BLOCK.findall((DOCS / page).read_text())):
            found.append((f"{page}#{i}", code))
    return found


@pytest.mark.parametrize(("where", "code"), _blocks(), ids=[w for w, _ in _blocks()])
def test_doc_sample_runs(where: str, code: str, tmp_path: Path) -> None:
    script = tmp_path / "sample.py"
    script.write_text(code)
    result = subprocess.run(
        [sys.executable, "-W", "error", "-X", "dev", str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{where} failed:\n{result.stdout}\n{result.stderr}"
    assert result.stdout.strip(), f"{where} printed nothing"


def test_every_runnable_page_has_samples() -> None:
    pages = {where.split("#")[0] for where, _ in _blocks()}
    assert pages == set(RUNNABLE_PAGES)
