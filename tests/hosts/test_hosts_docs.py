"""Every ```python block of docs/hosts.md is a complete program: run each, on a fresh migrated
database of each backend. Server samples are started, used over HTTP and stopped with SIGINT."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import httpx
import pytest
from hosts_support import listening_url, loopback_client

PAGE = Path(__file__).resolve().parents[2] / "docs" / "hosts.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.DOTALL)
TIMEOUT = 90.0


def test_the_page_has_the_three_hosts() -> None:
    kinds = ["server" if "uvicorn.run(" in block else "script" for block in BLOCKS]
    assert kinds == ["script", "server", "server"]
    assert "sqlmosaic.integrations.fastapi" in BLOCKS[1]
    assert "sqlmosaic.integrations.starlette" in BLOCKS[2]


async def _start(code: str, tmp_path: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    script = tmp_path / "sample.py"
    await asyncio.to_thread(script.write_text, code)  # file I/O off the event loop
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        "-X",
        "dev",
        str(script),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"block{i}" for i in range(3)])
async def test_doc_sample_runs(index: int, mosaic_fresh_url: str, tmp_path: Path) -> None:
    code = BLOCKS[index]
    # PORT=0: the sample's uvicorn binds a port the kernel picks and logs it
    env = {**os.environ, "DATABASE_URL": mosaic_fresh_url, "PORT": "0"}
    process = await _start(code, tmp_path, env)
    try:
        if "uvicorn.run(" not in code:
            output, _ = await asyncio.wait_for(process.communicate(), TIMEOUT)
            assert process.returncode == 0, output.decode()
            assert "Note G -> ['ada." in output.decode()
            return
        async with asyncio.timeout(TIMEOUT):
            base, _ = await listening_url(process)
        async with asyncio.timeout(TIMEOUT), loopback_client(base, timeout=5) as api:
            while True:
                assert process.returncode is None, "the sample exited during startup"
                try:
                    listed = await api.get("/users")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            assert listed.status_code == 200, listed.text
            assert listed.json()["items"] == []
            created = await api.post("/users", json={"email": "doc@example.com", "name": "Doc"})
            assert created.status_code == 201, created.text
            assert set(created.json()) == {"id", "email", "name"}
            again = await api.post("/users", json={"email": "doc@example.com", "name": "Doc"})
            assert again.status_code == 409
            listed = await api.get("/users", params={"name__ilike": "do", "sort": "-id"})
            assert [u["email"] for u in listed.json()["items"]] == ["doc@example.com"]
            bad = await api.get("/users", params={"sort": "password_hash"})
            assert (bad.status_code, bad.json()["field"]) == (400, "password_hash")
        process.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(process.communicate(), TIMEOUT)
        assert process.returncode == 0, output.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
