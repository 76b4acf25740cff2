"""Repositories of the ``tasks`` plugin."""

from __future__ import annotations

from sqlmosaic import Filter, Page, Repository

from .models import Project, Task, TaskStatus


class ProjectRepository(Repository[Project]):
    model = Project
    name = "projects"


class TaskRepository(Repository[Task]):
    model = Task
    name = "tasks"
    # a client's idempotency key is its own business: never a filter or sort (an oracle)
    hidden_fields = frozenset({"idempotency_key"})

    async def open_for_user(
        self, user_id: int, *, limit: int = 50, after: str | None = None
    ) -> Page[Task]:
        """A user's open tasks, highest priority first, keyset-paginated (pass ``next_cursor``)."""
        return await self.list(
            Filter("assignee_id", "eq", user_id),
            Filter("status", "eq", TaskStatus.OPEN.value),
            order_by=["-priority"],
            limit=limit,
            after=after,
        )
