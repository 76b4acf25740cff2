"""Table models of the ``tasks`` plugin. ``task.assignee_id`` is a foreign key into ``accounts``."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, DateTime
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class Project(SQLModel, table=True):
    __tablename__ = "project"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    description: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


#: Longest accepted ``Idempotency-Key`` (a UUID is 36 characters).
IDEMPOTENCY_KEY_LENGTH = 200


class Task(SQLModel, table=True):
    __tablename__ = "task"
    __table_args__ = (CheckConstraint("status IN ('open', 'done')", name="status"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True, ondelete="CASCADE")
    title: str = Field(max_length=300)
    status: str = Field(default=TaskStatus.OPEN.value, max_length=10, index=True)
    priority: int = Field(default=0)
    assignee_id: int | None = Field(
        default=None, foreign_key="user.id", index=True, ondelete="SET NULL"
    )
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
    #: The client's idempotency key of the request that created the task: a retried create
    #: (after an unknown commit outcome, say) finds the row instead of inserting a second one.
    idempotency_key: str | None = Field(
        default=None, max_length=IDEMPOTENCY_KEY_LENGTH, unique=True, index=True
    )
