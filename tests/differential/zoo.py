"""The model shapes of the differential tests: one in-test plugin, its own MetaData.

Each shape is something a repository short path could get wrong: generated keys (integer,
UUID default factory, composite), server defaults, onupdate, a renamed column, a custom
``__init__``, a pydantic validator, Enum, JSON, tz-aware datetime, Decimal, relationships
(one-to-many, many-to-many) and mapper/instance events.
"""

# no ``from __future__ import annotations``: SQLModel reads the relationship annotations
import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import field_validator
from sqlalchemy import JSON, Column, DateTime, MetaData, String, event
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import registry
from sqlmodel import Field, Relationship, SQLModel

import sqlmosaic
from sqlmosaic import Repository


class _Base(SQLModel, registry=registry(metadata=MetaData())):
    pass


class Kind(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Thing(_Base, table=True):
    """Integer key; the kitchen sink of column kinds."""

    __tablename__ = "zoo_thing"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=20)
    score: int | None = None  # nullable: keyset pagination over NULLs
    rank: int = 0  # few values: ties
    kind: Kind = Field(default=Kind.RED, sa_column=Column(SAEnum(Kind), nullable=False))
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    price: Decimal = Field(default=Decimal("0.00"), max_digits=10, decimal_places=2)
    note: str | None = Field(default=None, sa_column=Column("note_db", String(20), nullable=True))
    code: str | None = Field(
        default=None, sa_column=Column(String(10), nullable=False, server_default="Z")
    )
    touched: int = Field(default=0, sa_column_kwargs={"onupdate": 1})


class Token(_Base, table=True):
    """UUID key from a default factory."""

    __tablename__ = "zoo_token"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    label: str = Field(max_length=20)


class Pair(_Base, table=True):
    """Composite key given by the caller."""

    __tablename__ = "zoo_pair"

    left: int = Field(primary_key=True)
    right: str = Field(primary_key=True, max_length=10)
    value: int = 0


class Article(_Base, table=True):
    """A custom ``__init__`` (derived slug) and a pydantic validator."""

    __tablename__ = "zoo_article"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=40)
    slug: str = Field(default="", max_length=60)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        if not self.slug:
            self.slug = self.title.strip().lower().replace(" ", "-")

    @field_validator("title")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()


class TagLink(_Base, table=True):
    __tablename__ = "zoo_tag_link"

    post_id: int | None = Field(default=None, foreign_key="zoo_post.id", primary_key=True)
    tag_id: int | None = Field(default=None, foreign_key="zoo_tag.id", primary_key=True)


class Post(_Base, table=True):
    """One-to-many (comments) and many-to-many (tags)."""

    __tablename__ = "zoo_post"

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=20)
    comments: list["Comment"] = Relationship(back_populates="post")
    tags: list["Tag"] = Relationship(back_populates="posts", link_model=TagLink)


class Comment(_Base, table=True):
    __tablename__ = "zoo_comment"

    id: int | None = Field(default=None, primary_key=True)
    post_id: int | None = Field(default=None, foreign_key="zoo_post.id")
    body: str = Field(max_length=20)
    post: Post | None = Relationship(back_populates="comments")


class Tag(_Base, table=True):
    __tablename__ = "zoo_tag"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=20)
    posts: list[Post] = Relationship(back_populates="tags", link_model=TagLink)


class Evented(_Base, table=True):
    """Mapper and instance events: what fired is recorded in ``EVENTS``."""

    __tablename__ = "zoo_evented"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=20)
    stamp: str = Field(default="", max_length=20)
    code: str | None = Field(default=None, sa_column_kwargs={"server_default": "E"})


EVENTS: list[tuple[str, Any]] = []


@event.listens_for(Evented, "before_insert")
def _before_insert(_mapper: Any, _connection: Any, target: Evented) -> None:
    target.stamp = f"bi:{target.name}"
    EVENTS.append(("before_insert", target.name))


@event.listens_for(Evented, "after_update")
def _after_update(_mapper: Any, _connection: Any, target: Evented) -> None:
    EVENTS.append(("after_update", target.name))


@event.listens_for(Evented, "refresh_flush")
def _refresh_flush(target: Evented, _context: Any, attrs: Any) -> None:
    EVENTS.append(("refresh_flush", tuple(sorted(attrs or ()))))


class Watched(_Base, table=True):
    """Only a ``refresh_flush`` listener: the direct INSERT must step aside for it."""

    __tablename__ = "zoo_watched"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=20)
    code: str | None = Field(default=None, sa_column_kwargs={"server_default": "W"})


@event.listens_for(Watched, "refresh_flush")
def _watched_refresh_flush(target: Watched, _context: Any, attrs: Any) -> None:
    EVENTS.append(("refresh_flush", target.name, tuple(sorted(attrs or ()))))


class WatchedRepository(Repository[Watched]):
    pass


class ThingRepository(Repository[Thing]):
    pass


class TokenRepository(Repository[Token]):
    pass


class PairRepository(Repository[Pair]):
    pass


class ArticleRepository(Repository[Article]):
    pass


class PostRepository(Repository[Post]):
    pass


class EventedRepository(Repository[Evented]):
    pass


class ZooPlugin:
    mosaic_name = "zoo"

    @sqlmosaic.hookimpl
    def mosaic_models(self) -> list[type[SQLModel]]:
        return [Thing, Token, Pair, Article, Post, Comment, Tag, TagLink, Evented, Watched]
