"""Relationships without MissingGreenlet: ``load=`` (allow-listed names) and ``options=`` on
``get``/``get_or_none``/``list``, compared with the ORM's ``selectinload``. Both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlalchemy.orm import selectinload
from sqlmodel.ext.asyncio.session import AsyncSession

from sqlmosaic import InvalidQueryError

from .zoo import Comment, Post, PostRepository, Tag, ZooPlugin

pytestmark = pytest.mark.mosaic_plugins(ZooPlugin())


class CommentsOnlyRepository(PostRepository):
    load_fields = frozenset({"comments"})


async def _post(session: AsyncSession) -> int:
    post = Post(title="p", comments=[Comment(body="a"), Comment(body="b")], tags=[Tag(name="t")])
    await PostRepository(session).add(post)
    assert post.id is not None
    session.expunge_all()
    return post.id


async def test_get_and_list_load_relationships(mosaic_session: AsyncSession) -> None:
    post_id = await _post(mosaic_session)
    posts = PostRepository(mosaic_session)
    got = await posts.get(post_id, load=["comments", "tags"])
    assert sorted(c.body for c in got.comments) == ["a", "b"]
    assert [t.name for t in got.tags] == ["t"]
    mosaic_session.expunge_all()
    orm = await mosaic_session.get(
        Post, post_id, options=[selectinload(Post.comments), selectinload(Post.tags)]
    )
    assert orm is not None
    assert sorted(c.body for c in orm.comments) == sorted(c.body for c in got.comments)
    mosaic_session.expunge_all()
    page = await posts.list(load="comments", options=[selectinload(Post.tags)])  # type: ignore[arg-type]
    assert [sorted(c.body for c in p.comments) for p in page.items] == [["a", "b"]]
    assert [t.name for t in page.items[0].tags] == ["t"]
    # already in the session without its comments: load= still loads them
    mosaic_session.expunge_all()
    plain = await posts.get(post_id)
    # not loaded: reading it would be a lazy load (MissingGreenlet in async code)
    assert "comments" in inspect(plain).unloaded
    again = await posts.get_or_none(post_id, load=["comments"])
    assert again is plain
    assert len(again.comments) == 2


async def test_load_names_are_allow_listed(mosaic_session: AsyncSession) -> None:
    post_id = await _post(mosaic_session)
    for name in ("nope", "title"):
        with pytest.raises(InvalidQueryError) as info:
            await PostRepository(mosaic_session).get(post_id, load=[name])
        assert info.value.field == name
    limited = CommentsOnlyRepository(mosaic_session)
    assert limited.allowed_loads() == {"comments"}
    with pytest.raises(InvalidQueryError) as info:
        await limited.list(load=["tags"])
    assert info.value.field == "tags"
    assert len((await limited.get(post_id, load=["comments"])).comments) == 2
