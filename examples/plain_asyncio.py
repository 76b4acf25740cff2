"""sqlmosaic without a web framework: one unit of work across both first-party plugins.

Creates a user and a team (``accounts``), a project and a task assigned to that user
(``tasks``) in ONE transaction, then reads the user's open tasks back in a new session.

    mosaic db upgrade                    # once: migrate ./mosaic.db (or scripts/run)
    python examples/plain_asyncio.py     # DATABASE_URL=postgresql+asyncpg://... works too
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
from dataclasses import dataclass
from typing import Any

from mosaic_accounts import AccountsService, Team, User, UserRepository
from mosaic_tasks import Project, ProjectRepository, Task, TaskRepository, TaskService
from sqlmosaic import Mosaic, MosaicError, mask_password


@dataclass(frozen=True)
class Created:
    user: User
    team: Team
    project: Project
    task: Task


async def create_everything(mosaic: Mosaic, suffix: str | None = None) -> Created:
    """User, team (with its owner membership), project and task: one unit of work.

    The services are ``@transactional``; inside ``mosaic.unit_of_work()`` each of their calls
    becomes a SAVEPOINT and the single COMMIT happens at the end of the block. Any error rolls
    everything back.
    """
    tag = suffix or secrets.token_hex(3)  # unique names: the script can run again and again
    async with mosaic.unit_of_work() as uow:
        accounts = AccountsService(uow.session)
        tasks = TaskService(uow.session)
        user = await accounts.register(f"ada.{tag}@example.com", "Ada Lovelace")
        assert user.id is not None
        team = await accounts.create_team(f"Analysts {tag}", owner_id=user.id)
        project = await uow.repository(ProjectRepository).add(
            Project(name=f"Analytical Engine {tag}", description="Note G")
        )
        assert project.id is not None
        task = await tasks.create_task(
            project.id, "Compute the Bernoulli numbers", assignee_id=user.id, priority=5
        )
    return Created(user=user, team=team, project=project, task=task)


def _show(kind: str, obj: Any, exclude: set[str] | None = None) -> str:
    fields = obj.model_dump(mode="json", exclude=exclude or set())
    return f"{kind:<8} " + " ".join(f"{k}={v}" for k, v in sorted(fields.items()))


async def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        async with Mosaic() as mosaic:  # settings from the environment; engine disposed on exit
            created = await create_everything(mosaic)
            print(_show("user", created.user, exclude={"password_hash"}))
            print(_show("team", created.team))
            print(_show("project", created.project))
            print(_show("task", created.task))
            async with mosaic.session_factory() as session:  # a new session: committed data
                user_id = created.user.id
                assert user_id is not None
                user = await mosaic.repository(UserRepository, session).get(user_id)
                page = await mosaic.repository(TaskRepository, session).open_for_user(user_id)
            print(f"open tasks of {user.email}: {[t.title for t in page.items]}")
    except MosaicError as exc:
        print(f"error: {mask_password(str(exc))}", file=sys.stderr)
        print("(has the database been migrated? run `mosaic db upgrade`)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
