"""Hook implementations of the ``comments`` plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmosaic import Repository, hookimpl

from .models import Comment
from .repositories import CommentRepository


@hookimpl
def mosaic_requires() -> list[str]:
    # comment.task_id -> task.id (tasks), comment.author_id -> user.id (accounts).
    return ["accounts", "tasks"]


@hookimpl
def mosaic_models() -> list[type[Any]]:
    return [Comment]


@hookimpl
def mosaic_repositories() -> list[type[Repository[Any]]]:
    return [CommentRepository]


@hookimpl
def mosaic_migrations() -> Path:
    # This plugin owns its tables' history: the branch "comments", shipped in the wheel.
    return Path(__file__).parent / "migrations"
