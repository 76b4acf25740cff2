"""Table models of the ``accounts`` plugin (plain SQLModel: SQLModel's global metadata)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import CheckConstraint, DateTime
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


class User(SQLModel, table=True):
    __tablename__ = "user"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    name: str = Field(max_length=200)
    is_active: bool = Field(default=True)
    # Hidden: never filterable or sortable through the repository (see UserRepository).
    password_hash: str | None = Field(
        default=None, max_length=200, sa_column_kwargs={"info": {"hidden": True}}
    )
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class Team(SQLModel, table=True):
    __tablename__ = "team"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    created_at: datetime = Field(default_factory=_now, sa_type=DateTime(timezone=True))


class Membership(SQLModel, table=True):
    __tablename__ = "membership"
    __table_args__ = (CheckConstraint("role IN ('owner', 'member')", name="role"),)

    team_id: int = Field(foreign_key="team.id", primary_key=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="user.id", primary_key=True, ondelete="CASCADE", index=True)
    role: str = Field(default="member", max_length=20)
