"""Repositories of the ``comments`` plugin."""

from __future__ import annotations

from sqlmosaic import Filter, Page, Repository

from .models import Comment


class CommentRepository(Repository[Comment]):
    model = Comment
    name = "comments"

    async def for_task(
        self, task_id: int, *, limit: int = 50, after: str | None = None
    ) -> Page[Comment]:
        """A task's comments, oldest first, keyset-paginated (pass ``next_cursor``)."""
        return await self.list(
            Filter("task_id", "eq", task_id), order_by=["id"], limit=limit, after=after
        )
