"""Table model of the ``comments`` plugin: foreign keys into ``tasks`` and ``accounts``."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class Comment(SQLModel, table=True):
    __tablename__ = "comment"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True, ondelete="CASCADE")
    author_id: int | None = Field(
        default=None, foreign_key="user.id", index=True, ondelete="SET NULL"
    )
    body: str = Field(max_length=4000)
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))
