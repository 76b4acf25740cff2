"""Request and response schemas. Read schemas list their fields explicitly, so a column such as
``user.password_hash`` can never reach a response."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlmodel import SQLModel

from mosaic_tasks import TaskStatus
from sqlmosaic import ModelT, Page

ItemT = TypeVar("ItemT", bound=BaseModel)


class ReadModel(SQLModel):
    """Base of the response schemas: timestamps always carry a time zone.

    SQLite keeps no offset, so a ``DateTime(timezone=True)`` column reads back naive there;
    every timestamp is written in UTC, so a naive one read back is UTC.
    """

    @field_validator("*", mode="after")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


# --------------------------------------------------------------------------- accounts


class UserCreate(SQLModel):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field(min_length=1, max_length=200)
    password: str | None = Field(default=None, min_length=8, max_length=200)


class UserUpdate(SQLModel):
    email: str | None = Field(
        default=None, min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"
    )
    name: str | None = Field(default=None, min_length=1, max_length=200)
    is_active: bool | None = None


class UserRead(ReadModel):
    id: int
    email: str
    name: str
    is_active: bool
    created_at: datetime


class TeamCreate(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    owner_id: int


class TeamUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)


class TeamRead(ReadModel):
    id: int
    name: str
    created_at: datetime


class MemberCreate(SQLModel):
    user_id: int
    role: Literal["owner", "member"] = "member"


class MembershipRead(ReadModel):
    team_id: int
    user_id: int
    role: str


# --------------------------------------------------------------------------- tasks


class ProjectCreate(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)


class ProjectUpdate(SQLModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)


class ProjectRead(ReadModel):
    id: int
    name: str
    description: str
    created_at: datetime


class TaskCreate(SQLModel):
    project_id: int
    title: str = Field(min_length=1, max_length=300)
    priority: int = 0
    assignee_id: int | None = None


class TaskUpdate(SQLModel):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    status: TaskStatus | None = None
    priority: int | None = None
    assignee_id: int | None = None


class TaskRead(ReadModel):
    id: int
    project_id: int
    title: str
    status: TaskStatus
    priority: int
    assignee_id: int | None
    created_at: datetime


# --------------------------------------------------------------------------- pages


class PageOut(BaseModel, Generic[ItemT]):
    """One page of a list; pass ``next_cursor`` back as ``?after=`` for the next one."""

    model_config = ConfigDict(frozen=True)

    items: list[ItemT]
    limit: int
    next_cursor: str | None
    total: int | None = None
    sort: list[str]


def page_of(page: Page[ModelT], convert: Callable[[ModelT], ItemT]) -> PageOut[ItemT]:
    """A repository :class:`~sqlmosaic.Page` as a response body."""
    return PageOut(
        items=[convert(item) for item in page.items],
        limit=page.limit,
        next_cursor=page.next_cursor,
        total=page.total,
        sort=list(page.sort),
    )
