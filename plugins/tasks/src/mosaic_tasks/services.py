"""Services of the ``tasks`` plugin; they use ``accounts``' repository in the same unit of work."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from mosaic_accounts import UserRepository
from sqlmosaic import InvalidQueryError, transactional

from .models import IDEMPOTENCY_KEY_LENGTH, Task, TaskStatus
from .repositories import ProjectRepository, TaskRepository


class TaskService:
    """Task operations on one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.projects = ProjectRepository(session)
        self.tasks = TaskRepository(session)
        self.users = UserRepository(session)

    @transactional
    async def create_task(
        self,
        project_id: int,
        title: str,
        *,
        assignee_id: int | None = None,
        priority: int = 0,
        idempotency_key: str | None = None,
    ) -> Task:
        """Create a task. With ``idempotency_key``, creating again with the same key returns
        the task the first call made (one ``INSERT ... ON CONFLICT DO NOTHING``): a request
        retried after :class:`~sqlmosaic.CommitOutcomeUnknownError` is then exactly-once."""
        await self.projects.get(project_id)
        if assignee_id is not None:
            user = await self.users.get(assignee_id)
            if not user.is_active:
                raise InvalidQueryError(
                    "cannot assign a task to an inactive user", field="assignee_id"
                )
        task = Task(project_id=project_id, title=title, assignee_id=assignee_id, priority=priority)
        if idempotency_key is None:
            return await self.tasks.add(task)
        if not 1 <= len(idempotency_key) <= IDEMPOTENCY_KEY_LENGTH:
            raise InvalidQueryError(
                f"an idempotency key has 1 to {IDEMPOTENCY_KEY_LENGTH} characters",
                field="idempotency_key",
            )
        task.idempotency_key = idempotency_key
        return await self.tasks.upsert(task, conflict=["idempotency_key"], update=[])

    @transactional
    async def assign(self, task_id: int, user_id: int) -> Task:
        """Reassign a task: reads a user through ``accounts``' repository, writes a task."""
        user = await self.users.get(user_id)
        if not user.is_active:
            raise InvalidQueryError("cannot assign a task to an inactive user", field="assignee_id")
        return await self.tasks.update(task_id, {"assignee_id": user_id})

    @transactional
    async def complete(self, task_id: int) -> Task:
        return await self.tasks.update(task_id, {"status": TaskStatus.DONE.value})
