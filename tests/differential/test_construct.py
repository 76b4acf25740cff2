"""Differential test of ``_loading``: loaded rows built by the C-level ``new_instance`` against
SQLModel's own path (``SQLModel.__new__`` + ``__setattr__``), on both backends.

The same rows of every model shape (the zoo, plus private attributes and a class that must keep
SQLModel's path) are loaded twice, once each way, through the ORM (``select``, a relationship
load) and through the repository (``get``, ``list``); the instances are compared slot by slot:
instance ``__dict__``, pydantic's three slots, the ORM state (key, identity, committed and
unloaded attributes), ``model_dump``, and what an attribute change afterwards does.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import CodeType, FrameType
from typing import Any

import pytest
from pydantic import PrivateAttr
from sqlalchemy import MetaData, inspect
from sqlalchemy.orm import registry, selectinload
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

import sqlmosaic
from sqlmosaic import Repository
from sqlmosaic._loading import install_fast_new_instance, uses_fast_new_instance

from .zoo import (
    Article,
    Comment,
    Evented,
    Kind,
    Pair,
    Post,
    Tag,
    TagLink,
    Thing,
    Token,
    Watched,
    ZooPlugin,
)


class _Base(SQLModel, registry=registry(metadata=MetaData())):
    pass


class Secretive(_Base, table=True):
    """Private attributes, with a default and a default factory."""

    __tablename__ = "construct_secretive"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=20)
    _cache: int = PrivateAttr(default=7)
    _seen: list[int] = PrivateAttr(default_factory=list)


class Guarded(_Base, table=True):
    """A ``__setattr__`` of its own: must keep SQLModel's path."""

    __tablename__ = "construct_guarded"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=20)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)


class _CountingNew:
    """A mixin after SQLModel in the MRO with a ``__new__``: SQLModel's ``super().__new__``
    reaches it, so the class must keep SQLModel's path."""

    made = 0

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        _CountingNew.made += 1
        return super().__new__(cls)


class Mixed(_Base, _CountingNew, table=True):
    __tablename__ = "construct_mixed"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=20)


class ConstructPlugin:
    mosaic_name = "construct"

    @sqlmosaic.hookimpl
    def mosaic_models(self) -> list[type[SQLModel]]:
        return [Secretive, Guarded, Mixed]


pytestmark = pytest.mark.mosaic_plugins(ZooPlugin(), ConstructPlugin())

FAST = [Thing, Token, Pair, Article, Post, Comment, Tag, TagLink, Evented, Watched, Secretive]
KEPT = [Guarded, Mixed]
CHANGE: dict[type[Any], tuple[str, Any]] = {
    Thing: ("name", "zz"),
    Token: ("label", "zz"),
    Pair: ("value", 9),
    Article: ("title", "zz"),
    Post: ("title", "zz"),
    Comment: ("body", "zz"),
    Tag: ("name", "zz"),
    Evented: ("name", "zz"),
    Watched: ("name", "zz"),
    Secretive: ("name", "zz"),
}


def _snapshot(obj: Any) -> dict[str, Any]:
    state = inspect(obj)
    private: Any
    try:
        private = ("value", obj._cache, obj._seen) if isinstance(obj, Secretive) else None
    except Exception as exc:  # what SQLModel's path gives is what must be compared
        private = ("raises", type(exc), str(exc))
    return {
        "type": type(obj),
        "dict": {k: v for k, v in vars(obj).items() if k != "_sa_instance_state"},
        "fields_set": obj.__pydantic_fields_set__,
        "extra": obj.__pydantic_extra__,
        "private": obj.__pydantic_private__,
        "private_attrs": private,
        "state_type": type(state),
        "state_is_own": state.obj() is obj and state.class_ is type(obj),
        "key": state.key,
        "persistent": state.persistent,
        "committed": dict(state.committed_state),
        "unloaded": set(state.unloaded),
        "dump": obj.model_dump(),
    }


@contextmanager
def _sqlmodel_path(model: type[Any]) -> Iterator[None]:
    """``model`` loads through SQLModel's own path inside the block, as it found it after."""
    manager = manager_of_class(model)
    own = vars(manager).pop("new_instance", None)
    try:
        yield
    finally:
        if own is not None:
            manager.new_instance = own


@contextmanager
def _calls() -> Iterator[set[CodeType]]:
    """The Python functions called inside the block (a profile hook, nothing replaced)."""
    seen: set[CodeType] = set()

    def hook(frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call":
            seen.add(frame.f_code)

    previous = sys.getprofile()
    sys.setprofile(hook)
    try:
        yield seen
    finally:
        sys.setprofile(previous)


async def _seed(session: AsyncSession) -> None:
    post = Post(title="p", comments=[Comment(body="a"), Comment(body="b")], tags=[Tag(name="t")])
    session.add_all(
        [
            Thing(name="full", score=3, rank=1, kind=Kind.BLUE, data={"k": 1}, note="xy"),
            Thing(name="bare"),
            Token(label="tok"),
            Pair(left=1, right="r", value=5),
            Article(title="Hello There"),
            post,
            Evented(name="ev"),
            Watched(name="wa"),
            Secretive(name="s"),
            Guarded(name="g"),
            Mixed(name="m"),
        ]
    )
    await session.flush()
    session.expunge_all()


def _repository(model: type[Any]) -> type[Repository[Any]]:
    return type(f"{model.__name__}Repository", (Repository,), {"model": model})


def _loads(session: AsyncSession, model: type[Any]) -> list[Callable[[], Awaitable[list[Any]]]]:
    """The ways a row of ``model`` is loaded: ORM select, repository list and get."""
    repo = _repository(model)(session)

    async def orm() -> list[Any]:
        statement = select(model)
        if model is Post:
            statement = statement.options(selectinload(Post.comments), selectinload(Post.tags))  # type: ignore[arg-type]
        return list((await session.exec(statement)).all())

    load = ["comments", "tags"] if model is Post else None

    async def listed() -> list[Any]:
        return list((await repo.list(limit=100, load=load)).items)

    async def got() -> list[Any]:
        first = (await session.exec(select(model))).first()
        assert first is not None
        pk = inspect(first).identity
        session.expunge_all()
        return [await repo.get(pk if len(pk) > 1 else pk[0], load=load)]

    return [orm, listed, got]


def _related(objs: list[Any]) -> list[Any]:
    """The comments and tags a Post load brought along (loaded by their own managers)."""
    out: list[Any] = []
    for obj in objs:
        if isinstance(obj, Post):
            out += sorted(obj.comments, key=lambda c: c.body) + list(obj.tags)
    return out


async def test_fast_construction_builds_what_sqlmodel_builds(
    mosaic_session: AsyncSession,
) -> None:
    await _seed(mosaic_session)
    for model in FAST:
        assert install_fast_new_instance(model), model
        assert uses_fast_new_instance(model)
    for model in FAST:
        for load in _loads(mosaic_session, model):
            mosaic_session.expunge_all()
            with _sqlmodel_path(model), _sqlmodel_path(Comment), _sqlmodel_path(Tag):
                with _calls() as called:
                    theirs = await load()
                assert SQLModel.__new__.__code__ in called
                expected = [_snapshot(o) for o in theirs + _related(theirs)]
            mosaic_session.expunge_all()
            with _calls() as called:
                ours = await load()
            assert SQLModel.__new__.__code__ not in called, (model, load.__name__)
            got = [_snapshot(o) for o in ours + _related(ours)]
            assert got == expected, (model, load.__name__)
            assert ours, (model, load.__name__)
            # what a change afterwards does: tracked as on SQLModel's instance
            if model in CHANGE:
                key, value = CHANGE[model]
                for obj in (ours[0], theirs[0]):
                    setattr(obj, key, value)
                assert ours[0] in mosaic_session.dirty
                mine, sqlmodels = inspect(ours[0]).attrs[key], inspect(theirs[0]).attrs[key]
                assert mine.history == sqlmodels.history
                assert mine.history.added == [value]
                assert ours[0].__pydantic_fields_set__ == theirs[0].__pydantic_fields_set__
    mosaic_session.expunge_all()


async def test_classes_that_build_their_own_instances_keep_sqlmodels_path(
    mosaic_session: AsyncSession,
) -> None:
    await _seed(mosaic_session)
    for model in KEPT:
        assert not install_fast_new_instance(model), model
        assert not uses_fast_new_instance(model)
    mixed_id = (await mosaic_session.exec(select(Mixed))).one().id
    mosaic_session.expunge_all()
    before = _CountingNew.made  # counted from here: only the repository's load below
    mixed = await _repository(Mixed)(mosaic_session).get(mixed_id)
    assert mixed.name == "m"
    assert _CountingNew.made == before + 1  # the mixin's __new__ ran for the loaded row
    guarded = (await mosaic_session.exec(select(Guarded))).one()
    assert not uses_fast_new_instance(Guarded)
    assert guarded.name == "g"
