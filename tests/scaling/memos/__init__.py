"""A test-only plugin ``memos`` for per-plugin binds: one table, no foreign keys, and its own
Alembic branch (``memos``, depending on nothing), so ``MOSAIC_BINDS=memos=...`` can put it in a
database of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import Field, SQLModel

from sqlmosaic import Repository, hookimpl


class Memo(SQLModel, table=True):
    __tablename__ = "memo"

    id: int | None = Field(default=None, primary_key=True)
    author_email: str = Field(max_length=320, index=True)
    body: str = Field(max_length=500)


class MemoRepository(Repository[Memo]):
    model = Memo
    name = "memos"


@hookimpl
def mosaic_requires() -> list[str]:
    return ["accounts"]  # used by services next to users, but no foreign key into them


@hookimpl
def mosaic_models() -> list[type[Any]]:
    return [Memo]


@hookimpl
def mosaic_repositories() -> list[type[Repository[Any]]]:
    return [MemoRepository]


@hookimpl
def mosaic_migrations() -> Path:
    return Path(__file__).parent / "migrations"
