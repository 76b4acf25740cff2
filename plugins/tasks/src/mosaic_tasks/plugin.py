"""Hook implementations of the ``tasks`` plugin."""

from __future__ import annotations

from typing import Any

from sqlmosaic import Repository, hookimpl

from .models import Project, Task
from .repositories import ProjectRepository, TaskRepository


@hookimpl
def mosaic_requires() -> list[str]:
    # task.assignee_id references accounts' user table.
    return ["accounts"]


@hookimpl
def mosaic_models() -> list[type[Any]]:
    return [Project, Task]


@hookimpl
def mosaic_repositories() -> list[type[Repository[Any]]]:
    return [ProjectRepository, TaskRepository]
