"""``examples/plain_asyncio.py``: one unit of work across both plugins, no web framework."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from examples import plain_asyncio
from mosaic_accounts import TeamRepository, UserRepository
from mosaic_tasks import Project, ProjectRepository, TaskRepository
from sqlmosaic import ConflictError, Mosaic

ROOT = Path(__file__).resolve().parents[2]
SCRIPT_TIMEOUT = 120


async def test_create_everything_in_one_unit_of_work(mosaic_host: Mosaic) -> None:
    created = await plain_asyncio.create_everything(mosaic_host, "t1")
    assert created.user.id is not None
    assert created.task.assignee_id == created.user.id
    assert created.task.project_id == created.project.id
    async with mosaic_host.session_factory() as session:  # another session sees it committed
        user = await UserRepository(session).get(created.user.id)
        assert user.email == "ada.t1@example.com"
        members = await TeamRepository(session).members(created.team.id or 0)
        assert [m.id for m in members] == [created.user.id]
        assert (await ProjectRepository(session).get(created.project.id)).name.endswith("t1")
        open_tasks = await TaskRepository(session).open_for_user(created.user.id)
        assert [t.id for t in open_tasks.items] == [created.task.id]


async def test_a_failure_rolls_the_whole_unit_back(mosaic_host: Mosaic) -> None:
    # The project name is taken, so the unit fails after the user and the team were written.
    async with mosaic_host.unit_of_work() as uow:
        await uow.repository(ProjectRepository).add(Project(name="Analytical Engine t2"))
    with pytest.raises(ConflictError):
        await plain_asyncio.create_everything(mosaic_host, "t2")
    async with mosaic_host.session_factory() as session:
        assert await UserRepository(session).get_by_email("ada.t2@example.com") is None
        assert await TeamRepository(session).count(where={"name": "Analysts t2"}) == 0


async def test_the_script_runs(mosaic_fresh_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": mosaic_fresh_url, "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        "-X",
        "dev",
        str(ROOT / "examples" / "plain_asyncio.py"),
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), SCRIPT_TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    stdout, stderr = out.decode(), err.decode()
    assert process.returncode == 0, stdout + stderr
    lines = stdout.splitlines()
    assert [line.split()[0] for line in lines[:4]] == ["user", "team", "project", "task"]
    assert "password_hash" not in stdout
    assert "open tasks of ada." in lines[4]
    assert "Compute the Bernoulli numbers" in lines[4]
    assert "engine disposed" in stderr
